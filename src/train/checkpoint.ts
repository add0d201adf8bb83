/**
 * Checkpoints: `checkpoints/step-<N>/` holding `params.safetensors` (trainable parameters, Hugging
 * Face names and layout), `optimizer.safetensors` (`<param>.exp_avg`, `<param>.exp_avg_sq`) and
 * `state.json` (step, epoch, data order, best evaluation, progress counters).
 *
 * A checkpoint is written into a temporary folder, fsynced, then renamed into place, and only then is
 * `checkpoints/LATEST` (the folder name) replaced atomically. A crash at any point leaves the previous
 * checkpoint complete and findable; leftovers of the interrupted write are swept up later.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ModtuneError } from '../errors.js';
import { readSafetensors, writeSafetensors } from '../bert/safetensors.js';
import { writeAtomic } from '../onnx/io.js';
import { isProcessAlive, sweepDeadTemps, tempOwner } from '../util/folder-lock.js';
import type { DataOrderState } from '../data/batching.js';
import type { TensorMap } from './backends/types.js';

export const CHECKPOINT_VERSION = 1;
export const LATEST_FILE = 'LATEST';
const STEP_DIR = /^step-(\d+)$/;

/** The best evaluation so far, by the task's main metric. */
export interface BestRecord {
  step: number;
  main: number;
  metrics: Record<string, number>;
}

export interface CheckpointState {
  version: number;
  /** Optimizer updates done. */
  step: number;
  /** Epochs done, fractional (1.5 = half-way through the second epoch). */
  epoch: number;
  /** The training data order, exactly where the next update continues. */
  data: DataOrderState;
  /** Random generators' states (the data order's, as of the start of its current epoch). */
  rng: { data: number[] };
  best: BestRecord | null;
  /** Metrics of the latest evaluation (flattened across dev splits), or null before the first. */
  metrics: Record<string, number> | null;
  /**
   * False when the optimizer state could not be saved exactly (the ort-web backend cannot read
   * AdamW's moments back from ONNX Runtime's training runtime): a resume restarts them from zero.
   */
  optimizerStateExact?: boolean;
  progress: {
    /** Step of the latest completed evaluation (0: none). */
    lastEvalStep: number;
    /** Evaluations in a row without improvement (early stopping). */
    evalsSinceBest: number;
    /** Training wall time and examples so far, over all sessions of the run. */
    elapsedSec: number;
    trainSec: number;
    examples: number;
    /** Token slots of the training batches so far, and how many of them held real tokens (not padding). */
    slots?: number;
    tokens?: number;
  };
}

export interface Checkpoint {
  dir: string;
  name: string;
  state: CheckpointState;
  parameters: TensorMap;
  optimizer: TensorMap;
}

export type CheckpointStage = 'params' | 'optimizer' | 'state' | 'renamed' | 'latest';

export interface WriteCheckpointOptions {
  /** Newest checkpoints kept (default 2); `protect` steps are kept too (the best one). */
  keep?: number;
  protect?: number[];
  /** Called after each stage of the write (observability; tests use it to simulate crashes). */
  onStage?: (stage: CheckpointStage) => void;
  /** Hugging Face shapes of the parameters (tensors are stored flat without them). */
  shapes?: ReadonlyMap<string, number[]>;
}

export const checkpointsDir = (runDir: string) => path.join(runDir, 'checkpoints');
export const stepDirName = (step: number) => `step-${step}`;

/** Write a checkpoint atomically and point LATEST at it; returns its folder. */
export function writeCheckpoint(
  runDir: string,
  ck: { state: CheckpointState; parameters: TensorMap; optimizer: TensorMap },
  opts: WriteCheckpointOptions = {},
): string {
  const root = checkpointsDir(runDir);
  fs.mkdirSync(root, { recursive: true });
  const name = stepDirName(ck.state.step);
  const final = path.join(root, name);
  const stateJson = `${JSON.stringify(ck.state, null, 2)}\n`;
  if (fs.existsSync(path.join(final, 'state.json'))) {
    // The same step again (e.g. after an evaluation that an interruption had postponed): the
    // tensors are those of that step already, only the bookkeeping changes.
    writeAtomic(path.join(final, 'state.json'), stateJson);
    opts.onStage?.('state');
  } else {
    const tmp = path.join(root, `.tmp-${name}-${process.pid}`);
    fs.rmSync(tmp, { recursive: true, force: true });
    fs.mkdirSync(tmp);
    const meta = { format: 'pt', step: String(ck.state.step) };
    writeSafetensors(path.join(tmp, 'params.safetensors'), shapedTensors(ck.parameters, opts.shapes), meta);
    opts.onStage?.('params');
    writeSafetensors(path.join(tmp, 'optimizer.safetensors'), shapedTensors(ck.optimizer, opts.shapes), meta);
    opts.onStage?.('optimizer');
    writeAtomic(path.join(tmp, 'state.json'), stateJson);
    opts.onStage?.('state');
    fs.rmSync(final, { recursive: true, force: true });
    fs.renameSync(tmp, final);
    syncDir(root);
    opts.onStage?.('renamed');
  }
  writeAtomic(path.join(root, LATEST_FILE), `${name}\n`);
  syncDir(root);
  opts.onStage?.('latest');
  pruneCheckpoints(runDir, opts.keep ?? 2, [ck.state.step, ...(opts.protect ?? [])]);
  return final;
}

/**
 * Tensors for a safetensors file, each in its Hugging Face shape (moments take their parameter's
 * shape) when `shapes` knows it, else flat.
 */
export function shapedTensors(map: TensorMap, shapes?: ReadonlyMap<string, number[]>): Map<string, { shape: number[]; data: Float32Array }> {
  const shapeOf = (k: string, n: number) => {
    const s = shapes?.get(k) ?? shapes?.get(k.replace(/\.(exp_avg|exp_avg_sq)$/, ''));
    return s && s.reduce((a, b) => a * b, 1) === n ? s : [n];
  };
  return new Map([...map].map(([k, data]) => [k, { shape: shapeOf(k, data.length), data }]));
}

function syncDir(dir: string): void {
  try {
    const fd = fs.openSync(dir, 'r');
    try { fs.fsyncSync(fd); } finally { fs.closeSync(fd); }
  } catch {
    // Not every platform can fsync a directory; the rename itself is still atomic.
  }
}

/** Steps of the complete checkpoints (renamed into place, with state.json), ascending. */
export function listCheckpoints(runDir: string): number[] {
  const root = checkpointsDir(runDir);
  if (!fs.existsSync(root)) return [];
  return fs.readdirSync(root)
    .map((n) => STEP_DIR.exec(n))
    .filter((m): m is RegExpExecArray => !!m && fs.existsSync(path.join(root, m[0], 'state.json')))
    .map((m) => Number(m[1]))
    .sort((a, b) => a - b);
}

/** The checkpoint LATEST names, else the newest complete one; null when there is none. */
export function latestCheckpointStep(runDir: string): number | null {
  const root = checkpointsDir(runDir);
  try {
    const m = STEP_DIR.exec(fs.readFileSync(path.join(root, LATEST_FILE), 'utf8').trim());
    if (m && fs.existsSync(path.join(root, m[0], 'state.json'))) return Number(m[1]);
  } catch {
    // no LATEST: fall back to scanning
  }
  const steps = listCheckpoints(runDir);
  return steps.length ? steps[steps.length - 1]! : null;
}

export function readLatestCheckpoint(runDir: string): Checkpoint | null {
  const step = latestCheckpointStep(runDir);
  return step === null ? null : readCheckpoint(path.join(checkpointsDir(runDir), stepDirName(step)));
}

/** What a checkpoint of a run must hold, from the run's config and manifest. */
export interface CheckpointExpectations {
  totalSteps: number;
  /** The trainable parameters (name and number of values). */
  parameters: ReadonlyArray<{ name: string; size: number }>;
  /** Optimizer-state tensors it may hold (name → number of values). */
  moments: ReadonlyMap<string, number>;
  /** Whether all `moments` must be there (AdamW whose state the backend saves exactly). */
  requireMoments: boolean;
}

/**
 * Cross-check a checkpoint against its run: a step within the run, the evaluation counters within
 * the step, and exactly the manifest's tensors with their sizes. Throws a ModtuneError naming the
 * first fault.
 */
export function checkCheckpoint(ck: Checkpoint, e: CheckpointExpectations): void {
  const where = path.join(ck.dir, 'state.json');
  const s = ck.state;
  if (s.step > e.totalSteps) throw new ModtuneError(`${where}: step ${s.step} is beyond the run's ${e.totalSteps} steps`);
  if (!s.progress || !Number.isInteger(s.progress.lastEvalStep) || s.progress.lastEvalStep > s.step) throw new ModtuneError(`${where}: field 'progress.lastEvalStep' should be an integer ≤ step ${s.step}`);
  const { slots, tokens } = s.progress;
  if (slots !== undefined || tokens !== undefined) {
    if (!(Number.isSafeInteger(slots) && Number.isSafeInteger(tokens) && tokens! >= 0 && tokens! <= slots!)) {
      throw new ModtuneError(`${where}: fields 'progress.slots' and 'progress.tokens' should be integers with 0 ≤ tokens ≤ slots`);
    }
  }
  if (s.best && !(Number.isInteger(s.best.step) && s.best.step <= s.step)) throw new ModtuneError(`${where}: field 'best.step' should be an integer ≤ step ${s.step}`);
  const params = path.join(ck.dir, 'params.safetensors');
  for (const p of e.parameters) {
    const t = ck.parameters.get(p.name);
    if (!t) throw new ModtuneError(`${params}: trainable parameter '${p.name}' is missing`);
    if (t.length !== p.size) throw new ModtuneError(`${params}: '${p.name}' has ${t.length} values, the manifest says ${p.size}`);
  }
  if (ck.parameters.size !== e.parameters.length) {
    const known = new Set(e.parameters.map((p) => p.name));
    const extra = [...ck.parameters.keys()].find((k) => !known.has(k));
    throw new ModtuneError(`${params}: tensor '${extra}' is not a trainable parameter of the run's artifacts`);
  }
  const opt = path.join(ck.dir, 'optimizer.safetensors');
  for (const [name, t] of ck.optimizer) {
    const size = e.moments.get(name);
    if (size === undefined) throw new ModtuneError(`${opt}: tensor '${name}' is not optimizer state of the run's artifacts`);
    if (t.length !== size) throw new ModtuneError(`${opt}: '${name}' has ${t.length} values, expected ${size}`);
  }
  if (e.requireMoments && s.optimizerStateExact !== false) {
    const missing = [...e.moments.keys()].find((k) => !ck.optimizer.has(k));
    if (missing) throw new ModtuneError(`${opt}: optimizer state '${missing}' is missing`);
  }
}

/**
 * The checkpoint a resume continues from: the latest, or, when it is damaged (unreadable, or not
 * matching the run), the newest intact one before it, saying so. Null when the run has none.
 */
export function readResumeCheckpoint(runDir: string, e: CheckpointExpectations, log: (line: string) => void = () => {}): Checkpoint | null {
  const latest = latestCheckpointStep(runDir);
  if (latest === null) return null;
  const order = [latest, ...listCheckpoints(runDir).filter((s) => s < latest).reverse()];
  const damaged: string[] = [];
  for (const step of order) {
    const dir = path.join(checkpointsDir(runDir), stepDirName(step));
    let ck: Checkpoint;
    try {
      ck = readCheckpoint(dir);
      if (ck.state.step !== step) throw new ModtuneError(`${path.join(dir, 'state.json')}: step ${ck.state.step}, but the folder is ${stepDirName(step)}`);
      checkCheckpoint(ck, e);
    } catch (err) {
      if (!(err instanceof ModtuneError)) throw err;
      damaged.push(err.message);
      continue;
    }
    if (damaged.length) log(`checkpoint ${stepDirName(latest)} is damaged (${damaged[0]}); resuming from ${stepDirName(step)}, the newest intact one (the damaged ones after it are discarded)`);
    return ck;
  }
  throw new ModtuneError(`${runDir}: no intact checkpoint to resume from (${damaged.join('; ')}); start the run again with --force`);
}

/** Read one checkpoint folder. */
export function readCheckpoint(dir: string): Checkpoint {
  const stateFile = path.join(dir, 'state.json');
  let state: CheckpointState;
  try {
    state = JSON.parse(fs.readFileSync(stateFile, 'utf8')) as CheckpointState;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new ModtuneError(code === 'ENOENT' ? `${dir}: not a checkpoint (no state.json)` : `${stateFile}: not valid JSON (${(e as Error).message})`);
  }
  if (state.version !== CHECKPOINT_VERSION) throw new ModtuneError(`${stateFile}: checkpoint version ${state.version}, expected ${CHECKPOINT_VERSION}`);
  if (!Number.isInteger(state.step) || state.step < 0) throw new ModtuneError(`${stateFile}: field 'step' must be a non-negative integer`);
  if (!state.data || !Array.isArray(state.data.rng)) throw new ModtuneError(`${stateFile}: field 'data' (data order state) is missing`);
  const read = (f: string) => new Map([...readSafetensors(path.join(dir, f)).tensors].map(([k, t]) => [k, t.data]));
  return { dir, name: path.basename(dir), state, parameters: read('params.safetensors'), optimizer: read('optimizer.safetensors') };
}

/** Remove all but the newest `keep` checkpoints and the protected steps, and stale temp folders. */
export function pruneCheckpoints(runDir: string, keep: number, protect: number[] = []): void {
  const root = checkpointsDir(runDir);
  const steps = listCheckpoints(runDir);
  const kept = new Set([...steps.slice(Math.max(0, steps.length - keep)), ...protect]);
  for (const s of steps) if (!kept.has(s)) fs.rmSync(path.join(root, stepDirName(s)), { recursive: true, force: true });
  sweepDeadTemps(root, isTemp);
}

/** Leftovers of an interrupted write: checkpoint temp folders and `writeAtomic` temp files. */
const isTemp = (name: string) => name.startsWith('.tmp-') || /\.tmp-\d+-\d+$/.test(name);

/** A temporary whose writer is gone (a live writer's is still being written). */
const isDeadTemp = (name: string) => {
  if (!isTemp(name)) return false;
  const pid = tempOwner(name);
  return pid === null || pid === process.pid || !isProcessAlive(pid);
};

/**
 * Before resuming from `step`: drop what a crash may have left after it (temp folders, checkpoints
 * of later steps written without LATEST being updated), so the run continues on one timeline.
 */
export function discardAfter(runDir: string, step: number | null): void {
  const root = checkpointsDir(runDir);
  if (!fs.existsSync(root)) return;
  for (const n of fs.readdirSync(root)) {
    const m = STEP_DIR.exec(n);
    if (isDeadTemp(n) || (m && (step === null || Number(m[1]) > step))) fs.rmSync(path.join(root, n), { recursive: true, force: true });
  }
  if (step === null) fs.rmSync(path.join(root, LATEST_FILE), { force: true });
}
