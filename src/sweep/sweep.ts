/**
 * `modtune sweep`: resolve the grid (preset < grid.json < flags), check it against the base model
 * and the sweep folder, run the cells that are not done (a local process pool, or BullMQ workers
 * through Redis), and write results and the report. Re-running the same command continues: done
 * cells are never run again, failed ones are retried, interrupted ones resume from their checkpoint.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ModtuneError } from '../errors.js';
import { defaultModel } from '../bert/default-model.js';
import { resolveGlueDir, tokenizerBeside } from '../data/paths.js';
import { sha256File } from '../onnx/hash.js';
import { writeAtomic } from '../onnx/io.js';
import { checkHeads, countSelections, loadBaseModel } from './base.js';
import type { CellJob } from './cell.js';
import {
  cellLogFile, cellRunDir, clearSweepOutputs, gridDifferences, readSweepManifest, sweepFiles, writeSweepManifest, type SweepManifest,
} from './folder.js';
import { completeGrid, expandCells, hashJson, readGridFile, settingsOf, SHARED_OPTIONS, type SweepGrid } from './grid.js';
import { autoRates, defaultRate } from './lr.js';
import { weightMagnitudes, type ModuleMagnitude } from './magnitude.js';
import { runPool, threadsPerWorker } from './pool.js';
import { presetGrid } from './presets.js';
import { GridProgress } from './progress.js';
import { runOnQueue, queueStatus, type QueueOptions } from './queue/sweep-side.js';
import { writeReport, type ReportFiles } from './report.js';
import { appendResult, readResults, writeResultsCsv, type CellResult } from './results.js';

export interface SweepOptions extends Partial<SweepGrid> {
  /** The sweep folder. */
  out: string;
  /** grid.json (its fields under the flags). */
  grid?: string;
  preset?: string;
  /** Continue the sweep in `out` with the grid it was made for (flags may repeat it, not change it). */
  resume?: boolean;
  /** Accept a folder made for another grid: keep what still applies, start the rest over. */
  force?: boolean;
  /** GLUE folder for local cells (see resolveGlueDir). */
  data?: string;
  /** Local worker processes (default 1). */
  workers?: number;
  /** ONNX Runtime threads per worker process (default: the cores divided among the workers). */
  threads?: number;
  cacheDir?: string | false;
  /** Distribute over BullMQ workers through this Redis (redis://HOST:PORT). */
  queue?: string;
  queueName?: string;
  /** Only put the cells on the queue; collect with a later `sweep` (or see `--status`). */
  detach?: boolean;
  /** Where queue workers fetch the base model and tokenizer (a path they can read or an http URL); default the local paths. */
  modelUrl?: string;
  tokenizerUrl?: string;
  /** Poll period of the queue, ms (default 1000). */
  pollMs?: number;
  /** With `queue`: give up waiting when Redis has not answered for this long (default 60 s). */
  queueLostMs?: number;
  signal?: AbortSignal;
  log?: (line: string) => void;
}

export interface SweepResult {
  dir: string;
  total: number;
  done: number;
  failed: number;
  pending: number;
  interrupted: boolean;
  detached: boolean;
  report: ReportFiles | null;
}

interface Prepared {
  dir: string;
  manifest: SweepManifest;
  magnitudes: ModuleMagnitude[];
  tokenizer: string | null;
}

const GRID_FLAG_KEYS: Array<keyof SweepGrid> = ['model', 'tokenizer', 'tasks', 'train', 'seeds', 'lr', ...SHARED_OPTIONS];

/** The grid from its sources: a resumed folder's own, else preset < grid.json < flags. */
/** The grid, and the embedded default's name when the base is that default. */
function resolveGrid(o: SweepOptions, existing: SweepManifest | null, numLayersOf: (model: string) => number): { grid: SweepGrid; baseName?: string } {
  const flags: Partial<SweepGrid> = {};
  for (const k of GRID_FLAG_KEYS) if (o[k] !== undefined) (flags as Record<string, unknown>)[k] = o[k];
  if (o.resume && existing && !o.grid && !o.preset) return { grid: completeGrid({ ...existing.grid, ...flags }), baseName: existing.base.name };
  const fromFile = o.grid ? readGridFile(o.grid) : {};
  const given = flags.model ?? fromFile.model;
  // No model anywhere: the embedded pretrained default, with its vocabulary.
  const fallback = given ? undefined : defaultModel();
  if (fallback) o.log?.(`no model given: sweeping the embedded default ${fallback.name}`);
  const model = path.resolve(given ?? fallback!.onnx);
  const preset = o.preset ? presetGrid(o.preset, { numLayers: numLayersOf(model), data: o.data }) : {};
  const grid = completeGrid({ ...preset, ...fromFile, ...flags, model, ...(fallback && !flags.tokenizer && !fromFile.tokenizer ? { tokenizer: fallback.tokenizer } : {}) });
  return { grid, baseName: fallback?.name };
}

async function prepare(o: SweepOptions): Promise<Prepared> {
  const dir = path.resolve(o.out);
  const log = o.log ?? (() => {});
  const existing = fs.existsSync(dir) ? readSweepManifest(dir) : null;
  if (o.resume && !existing) throw new ModtuneError(`--resume: ${o.out} holds no sweep (no sweep.json); start one without --resume`);
  if (!existing && fs.existsSync(dir) && fs.readdirSync(dir).length > 0) {
    throw new ModtuneError(`${o.out} exists, is not empty and holds no sweep (no sweep.json); choose another --out`);
  }
  const bases = new Map<string, ReturnType<typeof loadBaseModel>>();
  const baseOf = (file: string) => {
    if (!fs.existsSync(file)) throw new ModtuneError(`${file}: model file not found`);
    let b = bases.get(file);
    if (!b) bases.set(file, (b = loadBaseModel(file)));
    return b;
  };
  const { grid, baseName } = resolveGrid(o, existing, (m) => baseOf(m).numLayers);
  const base = baseOf(grid.model);
  const tokenizer = grid.tokenizer ?? tokenizerBeside(grid.model) ?? null;
  if (grid.tokenizer && !fs.existsSync(grid.tokenizer)) throw new ModtuneError(`--tokenizer ${grid.tokenizer}: file not found (expected tokenizer.json or vocab.txt)`);
  if (!tokenizer) throw new ModtuneError(`no tokenizer beside ${grid.model} (looked for <model>.tokenizer.json, <model>.vocab.txt, tokenizer.json, vocab.txt); pass --tokenizer PATH`);
  if (!o.queue) for (const t of grid.tasks) resolveGlueDir(t, { data: o.data });

  checkHeads(base, grid.tasks, { newHead: grid.newHead, seed: grid.seeds[0] });
  const counts = countSelections(base, grid.train, grid.tasks[0]!, { newHead: grid.newHead, freezeHead: grid.freezeHead, seed: grid.seeds[0] });
  const ratesOf = (sel: string) => {
    const c = counts.get(sel)!;
    return grid.lr === 'auto' ? autoRates(c.trainableCount, c.totalCount) : grid.lr === 'default' ? [defaultRate(c.trainableCount, c.totalCount)] : grid.lr;
  };
  const cells = expandCells(grid, ratesOf);
  const settingsHash = hashJson({ base: base.sha256, tokenizer: sha256File(tokenizer), settings: settingsOf(grid) });
  const next = {
    grid, base: { file: base.file, sha256: base.sha256, numLayers: base.numLayers, ...(baseName ? { name: baseName } : {}) }, settingsHash,
    gridHash: hashJson({ settingsHash, cells }),
    selections: Object.fromEntries(grid.train.map((s) => [s, { ...counts.get(s)!, rates: ratesOf(s) }])),
    cells,
  };
  let manifest: SweepManifest;
  if (existing) {
    if (existing.gridHash !== next.gridHash) {
      const diffs = gridDifferences(existing, next);
      if (!o.force) {
        throw new ModtuneError(`${o.out} holds a sweep of another grid (${diffs.join('; ')}); continue it with \`modtune sweep --resume --out ${o.out}\`, choose another --out, or pass --force to replace its grid`);
      }
      if (existing.settingsHash !== next.settingsHash) {
        log(`--force: the shared settings or the base model changed; the earlier cells of ${o.out} no longer apply and are removed`);
        clearSweepOutputs(dir);
      } else {
        log(`--force: ${o.out} now holds the new grid; finished cells that are still in it are kept`);
      }
    }
    manifest = writeSweepManifest(dir, next, existing.settingsHash === next.settingsHash ? existing.createdAt : undefined);
  } else {
    manifest = writeSweepManifest(dir, next);
  }
  const magnitudes = weightMagnitudes(base.structure);
  writeAtomic(sweepFiles(dir).magnitude, `${JSON.stringify(magnitudes, null, 2)}\n`);
  return { dir, manifest, magnitudes, tokenizer };
}

export async function sweep(o: SweepOptions): Promise<SweepResult> {
  const log = o.log ?? (() => {});
  const { dir, manifest, magnitudes, tokenizer } = await prepare(o);
  const results = readResults(dir);
  const isDone = (id: string) => results.get(id)?.status === 'done';
  const pending = manifest.cells.filter((c) => !isDone(c.id));
  const failedBefore = new Set(pending.filter((c) => results.get(c.id)?.status === 'failed').map((c) => c.id));
  const progress = new GridProgress(manifest.cells.length, manifest.cells.length - pending.length, failedBefore.size, log, results.values());
  log(`sweep ${dir}: ${manifest.cells.length} cells, ${manifest.cells.length - pending.length} done${failedBefore.size ? `, ${failedBefore.size} failed before (run again)` : ''}, ${pending.length} to run`);

  const record = (r: CellResult) => {
    const rel = { ...r, run: path.relative(dir, cellRunDir(dir, r.id)) };
    appendResult(dir, rel);
    results.set(r.id, rel);
    progress.cell(rel, failedBefore.has(r.id));
    failedBefore.delete(r.id);
  };

  let interrupted = false;
  let detached = false;
  if (pending.length) {
    fs.mkdirSync(sweepFiles(dir).logs, { recursive: true });
    const jobOf = (c: (typeof pending)[number]): CellJob => ({
      cell: c, settings: settingsOf(manifest.grid), model: manifest.grid.model, tokenizer: tokenizer ?? undefined,
      runDir: cellRunDir(dir, c.id), data: o.data, cacheDir: o.cacheDir,
      trainableCount: manifest.selections[c.selection]!.trainableCount, totalCount: manifest.selections[c.selection]!.totalCount,
    });
    if (o.queue) {
      const q: QueueOptions = {
        url: o.queue, queueName: o.queueName, dir, manifest, tokenizer: tokenizer!, modelUrl: o.modelUrl, tokenizerUrl: o.tokenizerUrl,
        detach: o.detach, pollMs: o.pollMs, lostAfterMs: o.queueLostMs, signal: o.signal, log,
      };
      const r = await runOnQueue(pending.map(jobOf), q, record);
      interrupted = r.interrupted;
      detached = r.detached;
    } else {
      const workers = o.workers ?? 1;
      if (!(Number.isSafeInteger(workers) && workers >= 1)) throw new ModtuneError(`--workers must be a positive integer, got ${workers}`);
      const threads = o.threads ?? threadsPerWorker(workers);
      log(`running ${pending.length} cells on ${Math.min(workers, pending.length)} worker process(es), ${threads} ONNX Runtime thread(s) each`);
      const r = await runPool(pending.map((c) => ({ job: { ...jobOf(c), threads }, logFile: cellLogFile(dir, c.id) })), { workers, onResult: record, signal: o.signal });
      interrupted = r.interrupted;
    }
  }

  const current = manifest.cells.map((c) => results.get(c.id)).filter((r): r is CellResult => !!r);
  writeResultsCsv(dir, current);
  const report = detached ? null : await writeReport(dir, manifest, results, magnitudes);
  const done = current.filter((r) => r.status === 'done').length;
  const failed = current.filter((r) => r.status === 'failed').length;
  return { dir, total: manifest.cells.length, done, failed, pending: manifest.cells.length - done - failed, interrupted, detached, report };
}

export interface StatusOptions {
  out: string;
  queue?: string;
  queueName?: string;
}

/** `--status`: what the folder holds and, with a queue, where its unfinished cells are. */
export async function sweepStatus(o: StatusOptions): Promise<string[]> {
  const dir = path.resolve(o.out);
  const manifest = readSweepManifest(dir);
  if (!manifest) throw new ModtuneError(`${o.out}: no sweep here (no sweep.json)`);
  const results = readResults(dir);
  const cur = manifest.cells.map((c) => results.get(c.id));
  const done = cur.filter((r) => r?.status === 'done').length;
  const failed = cur.filter((r) => r?.status === 'failed').length;
  const lines = [`${dir}: ${manifest.cells.length} cells: ${done} done, ${failed} failed, ${manifest.cells.length - done - failed} not finished`];
  for (const r of cur) if (r?.status === 'failed') lines.push(`  failed ${r.id}: ${r.error}`);
  if (o.queue) lines.push(...(await queueStatus({ url: o.queue, queueName: o.queueName, manifest, collected: new Set(cur.filter((r) => r?.status === 'done').map((r) => r!.id)) })));
  return lines;
}
