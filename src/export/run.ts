/**
 * Reading a finished (or running) training run folder: its config, the artifacts it trained with,
 * and one checkpoint's parameter values and metrics.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ModtuneError } from '../errors.js';
import { readManifest } from '../artifacts/generate.js';
import type { Manifest } from '../artifacts/manifest.js';

export interface RunCheckpoint {
  /** 'best', or the checkpoint folder name (`step-120`). */
  name: string;
  paramsFile: string;
  step: number | null;
  metrics: Record<string, number> | null;
  main: number | null;
}

export interface RunFolder {
  dir: string;
  config: Record<string, unknown>;
  artifactsDir: string;
  manifest: Manifest;
}

function readJson(file: string, what: string): unknown {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new ModtuneError(`${file}: cannot read ${what} (${code ?? (e as Error).message})`);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new ModtuneError(`${file}: not valid JSON (${(e as Error).message})`);
  }
}

/** A run folder's config.json and the artifacts folder it names (absolute, or relative to the run). */
export function readRun(dir: string): RunFolder {
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) throw new ModtuneError(`${dir}: run folder not found`);
  const configFile = path.join(dir, 'config.json');
  if (!fs.existsSync(configFile)) throw new ModtuneError(`${dir}: not a run folder (no config.json); expected the --out folder of 'modtune train'`);
  const config = readJson(configFile, 'the run config');
  if (typeof config !== 'object' || config === null || Array.isArray(config)) throw new ModtuneError(`${configFile}: should be a JSON object`);
  const c = config as Record<string, unknown>;
  let artifactsDir: string;
  if (typeof c.artifacts === 'string' && c.artifacts) artifactsDir = path.resolve(dir, c.artifacts);
  else if (fs.existsSync(path.join(dir, 'artifacts', 'manifest.json'))) artifactsDir = path.join(dir, 'artifacts');
  else throw new ModtuneError(`${configFile}: field 'artifacts' (the artifacts folder the run trained with) is missing`);
  if (!fs.existsSync(artifactsDir)) throw new ModtuneError(`${configFile}: artifacts folder ${artifactsDir} not found; it holds the manifest the checkpoint is read against`);
  return { dir, config: c, artifactsDir, manifest: readManifest(artifactsDir) };
}

const STEP_FOLDER = /^step-(\d+)$/;

/** Resolve `best`, `last` or a step number to a checkpoint of the run. */
export function resolveCheckpoint(run: RunFolder, which: string): RunCheckpoint {
  if (which === 'best') {
    const bestDir = path.join(run.dir, 'best');
    const paramsFile = path.join(bestDir, 'params.safetensors');
    if (!fs.existsSync(paramsFile)) {
      const have = stepFolders(run.dir);
      if (have.length === 0) throw noCheckpoints(run.dir);
      throw new ModtuneError(`${run.dir}: no best checkpoint (best/params.safetensors): the run has not evaluated yet; export one of its checkpoints with --checkpoint last or a step (${have.join(', ')})`);
    }
    const metricsFile = path.join(bestDir, 'metrics.json');
    let step: number | null = null;
    let metrics: Record<string, number> | null = null;
    let main: number | null = null;
    if (fs.existsSync(metricsFile)) {
      const m = readJson(metricsFile, 'the best metrics') as Record<string, unknown>;
      step = Number.isSafeInteger(m?.step) ? (m.step as number) : null;
      metrics = numberRecord(m?.metrics);
      main = typeof m?.main === 'number' ? m.main : null;
    }
    return { name: 'best', paramsFile, step, metrics, main };
  }
  const checkpoints = path.join(run.dir, 'checkpoints');
  let folder: string;
  if (which === 'last') {
    const latest = path.join(checkpoints, 'LATEST');
    if (!fs.existsSync(latest)) throw noCheckpoints(run.dir);
    folder = fs.readFileSync(latest, 'utf8').trim();
    if (!STEP_FOLDER.test(folder)) throw new ModtuneError(`${latest}: names '${folder}', expected a folder like step-120`);
  } else if (/^\d+$/.test(which)) {
    folder = `step-${Number(which)}`;
  } else {
    throw new ModtuneError(`--checkpoint should be best, last or a step number, got '${which}'`);
  }
  const dir = path.join(checkpoints, folder);
  const paramsFile = path.join(dir, 'params.safetensors');
  if (!fs.existsSync(paramsFile)) {
    const have = stepFolders(run.dir);
    if (have.length === 0) throw noCheckpoints(run.dir);
    throw new ModtuneError(`${run.dir}: no checkpoint ${folder}; the run has ${have.join(', ')} (older ones are pruned)`);
  }
  const step = Number(STEP_FOLDER.exec(folder)![1]);
  const evalAt = evalMetricsAt(run.dir, step);
  let metrics = evalAt?.metrics ?? null;
  let main = evalAt?.main ?? null;
  if (!metrics) {
    const stateFile = path.join(dir, 'state.json');
    if (fs.existsSync(stateFile)) {
      const s = readJson(stateFile, 'the checkpoint state') as Record<string, unknown>;
      metrics = numberRecord(s?.metrics);
      main = typeof s?.main === 'number' ? s.main : null;
    }
  }
  return { name: folder, paramsFile, step, metrics, main };
}

/** The run's checkpoint folders (`step-N`), by step. */
function stepFolders(dir: string): string[] {
  const checkpoints = path.join(dir, 'checkpoints');
  const names = fs.existsSync(checkpoints) ? fs.readdirSync(checkpoints).filter((f) => STEP_FOLDER.test(f) && fs.existsSync(path.join(checkpoints, f, 'params.safetensors'))) : [];
  return names.sort((a, b) => Number(STEP_FOLDER.exec(a)![1]) - Number(STEP_FOLDER.exec(b)![1]));
}

function noCheckpoints(dir: string): ModtuneError {
  return new ModtuneError(`${dir}: the run has no checkpoints yet (it stopped before its first one), so there is nothing to export; continue it with: modtune train --resume --out ${dir}`);
}

/** The dev evaluation logged at `step` in metrics.jsonl, if any (the last one when repeated). */
function evalMetricsAt(dir: string, step: number): { metrics: Record<string, number> | null; main: number | null } | undefined {
  const file = path.join(dir, 'metrics.jsonl');
  if (!fs.existsSync(file)) return undefined;
  let found: { metrics: Record<string, number> | null; main: number | null } | undefined;
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    if (!line.trim()) continue;
    let rec: Record<string, unknown>;
    try {
      rec = JSON.parse(line);
    } catch {
      continue; // a line being written when the run was stopped
    }
    if (rec?.type === 'eval' && rec.step === step) found = { metrics: numberRecord(rec.metrics), main: typeof rec.main === 'number' ? rec.main : null };
  }
  return found;
}

function numberRecord(v: unknown): Record<string, number> | null {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return null;
  const out: Record<string, number> = {};
  for (const [k, x] of Object.entries(v)) if (typeof x === 'number') out[k] = x;
  return out;
}
