import { shapedTensors } from './checkpoint.js';
/**
 * The run folder (see the layout in the README): config.json, metrics.jsonl, checkpoints/, best/,
 * summary.json. Every file is replaced atomically; metrics.jsonl is appended line by line and, on
 * resume, cut back to the checkpoint the run continues from.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ModtuneError } from '../errors.js';
import { readSafetensors, writeSafetensors } from '../bert/safetensors.js';
import { writeAtomic } from '../onnx/io.js';
import { LOCK_FILE, sweepDeadTemps } from '../util/folder-lock.js';
import { jsonHas, type FolderKind } from '../util/output-guard.js';
import type { TensorMap } from './backends/types.js';
import { checkpointsDir, stepDirName, type BestRecord } from './checkpoint.js';
import type { RunConfig } from './options.js';

export const runFiles = (dir: string) => ({
  config: path.join(dir, 'config.json'),
  metrics: path.join(dir, 'metrics.jsonl'),
  checkpoints: checkpointsDir(dir),
  best: path.join(dir, 'best'),
  summary: path.join(dir, 'summary.json'),
  artifacts: path.join(dir, 'artifacts'),
});

export interface TrainRecord {
  type: 'train';
  step: number;
  epoch: number;
  loss: number;
  lr: number;
  examplesPerSec: number;
  elapsedSec: number;
}

export interface EvalRecord {
  type: 'eval';
  step: number;
  epoch: number;
  split: string;
  metrics: Record<string, number>;
  main: number;
  loss: number;
}

export type MetricsRecord = TrainRecord | EvalRecord;

export interface TrainSummary {
  runDir: string;
  task: string;
  selection: string;
  trainableCount: number;
  totalCount: number;
  /** Optimizer updates done, and epochs (fractional). */
  steps: number;
  epochs: number;
  bestStep: number | null;
  bestMetrics: Record<string, number> | null;
  finalMetrics: Record<string, number> | null;
  examplesPerSec: number;
  /**
   * Share of the training batches' token slots that were padding (each batch is padded to its
   * longest example; `--group-by-length` makes that share small). Over this session's batches if
   * the run was resumed from a checkpoint that did not count them.
   */
  paddingShare: number;
  wallSeconds: number;
  backend: string;
  /** completed: all steps done; early-stopped: --early-stop ended it. */
  status: 'completed' | 'early-stopped';
}

/**
 * A run folder as `--force` may replace it: a `config.json` that modtune wrote. A folder holding
 * only the lock of a dead run and what `train` writes before its config (the artifacts it builds,
 * temporaries) is a run stopped before it started, restarted without --force.
 */
export const RUN_FOLDER: FolderKind = {
  name: 'a run folder',
  marker: 'config.json',
  recognise: (text) => jsonHas(text, { modtuneVersion: 'string', task: 'string', totals: 'object' }),
  partialProof: LOCK_FILE,
  partialEntry: (n) => n === LOCK_FILE || n.startsWith(`${LOCK_FILE}.`) || n === 'artifacts' || /^artifacts\.tmp-\d+$/.test(n) || /^config\.json\.tmp-\d+-\d+$/.test(n),
};

export function isRunFolder(dir: string): boolean {
  return fs.existsSync(runFiles(dir).config);
}

/**
 * The artifacts folder a run used: the recorded path, or `<run>/artifacts` when the run built them
 * (so a run folder still works after being moved or copied).
 */
export function runArtifactsDir(dir: string, cfg: RunConfig): string {
  if (cfg.artifactsBuilt || !fs.existsSync(cfg.artifacts)) {
    const inside = runFiles(dir).artifacts;
    if (fs.existsSync(path.join(inside, 'manifest.json'))) return inside;
  }
  return cfg.artifacts;
}

export function writeConfig(dir: string, cfg: RunConfig): void {
  writeAtomic(runFiles(dir).config, `${JSON.stringify(cfg, null, 2)}\n`);
}

export function readConfig(dir: string): RunConfig {
  const file = runFiles(dir).config;
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as RunConfig;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new ModtuneError(code === 'ENOENT' ? `${dir}: not a run folder (no config.json)` : `${file}: not valid JSON (${(e as Error).message})`);
  }
}

export function appendMetrics(dir: string, records: MetricsRecord[]): void {
  if (records.length) fs.appendFileSync(runFiles(dir).metrics, records.map((r) => `${JSON.stringify(r)}\n`).join(''));
}

export function readMetrics(dir: string): MetricsRecord[] {
  const file = runFiles(dir).metrics;
  if (!fs.existsSync(file)) return [];
  const out: MetricsRecord[] = [];
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    if (!line.trim()) continue;
    try {
      out.push(JSON.parse(line) as MetricsRecord);
    } catch {
      // A line cut short by a crash.
    }
  }
  return out;
}

/**
 * Keep the records up to `step` (train records at most `step`, evaluations at most `lastEvalStep`):
 * the resumed run writes the later ones again.
 */
export function truncateMetrics(dir: string, step: number, lastEvalStep: number): void {
  const kept = readMetrics(dir).filter((r) => (r.type === 'eval' ? r.step <= lastEvalStep : r.step <= step));
  writeAtomic(runFiles(dir).metrics, kept.map((r) => `${JSON.stringify(r)}\n`).join(''));
}

/** `best/`: parameters and metrics of the best evaluation, replaced as one folder. */
export function writeBest(dir: string, parameters: TensorMap, record: BestRecord, shapes?: ReadonlyMap<string, number[]>): void {
  const best = runFiles(dir).best;
  const tmp = `${best}.tmp-${process.pid}`;
  const old = `${best}.old-${process.pid}`;
  fs.rmSync(tmp, { recursive: true, force: true });
  fs.mkdirSync(tmp, { recursive: true });
  writeSafetensors(path.join(tmp, 'params.safetensors'), shapedTensors(parameters, shapes), { format: 'pt', step: String(record.step) });
  writeAtomic(path.join(tmp, 'metrics.json'), `${JSON.stringify(record, null, 2)}\n`);
  fs.rmSync(old, { recursive: true, force: true });
  if (fs.existsSync(best)) fs.renameSync(best, old);
  fs.renameSync(tmp, best);
  fs.rmSync(old, { recursive: true, force: true });
}

export function readBestRecord(dir: string): BestRecord | null {
  try {
    return JSON.parse(fs.readFileSync(path.join(runFiles(dir).best, 'metrics.json'), 'utf8')) as BestRecord;
  } catch {
    return null;
  }
}

/**
 * Make `best/` agree with the checkpoint a run resumes from: an evaluation after that checkpoint
 * may have replaced it (the resumed run will evaluate again), or a crash may have cut its
 * replacement short. The best step always has a checkpoint (one is written whenever the best
 * improves, and pruning keeps it), so its parameters can be restored from there.
 */
export function reconcileBest(dir: string, best: BestRecord | null): void {
  const files = runFiles(dir);
  // Leftovers of a killed writer: best/ being replaced, atomic writes, a lock being taken.
  sweepDeadTemps(dir, (n) => /^best\.(tmp|old)-\d+$/.test(n) || /\.tmp-\d+-\d+$/.test(n) || n.startsWith(`${LOCK_FILE}.`));
  const onDisk = readBestRecord(dir);
  if (!best) {
    fs.rmSync(files.best, { recursive: true, force: true });
    return;
  }
  if (onDisk && onDisk.step === best.step && fs.existsSync(path.join(files.best, 'params.safetensors'))) return;
  const source = path.join(files.checkpoints, stepDirName(best.step), 'params.safetensors');
  if (!fs.existsSync(source)) throw new ModtuneError(`${dir}: the best evaluation (step ${best.step}) has no checkpoint to restore best/ from (${source} missing)`);
  const tensors = readSafetensors(source).tensors;
  const params = new Map([...tensors].map(([k, t]) => [k, t.data]));
  writeBest(dir, params, best, new Map([...tensors].map(([k, t]) => [k, t.shape])));
}

export function writeSummary(dir: string, summary: TrainSummary): void {
  writeAtomic(runFiles(dir).summary, `${JSON.stringify(summary, null, 2)}\n`);
}

export function readSummary(dir: string): TrainSummary | null {
  try {
    return JSON.parse(fs.readFileSync(runFiles(dir).summary, 'utf8')) as TrainSummary;
  } catch {
    return null;
  }
}
