import * as path from 'node:path';
import { ModtuneError } from '../errors.js';
import type { Manifest } from '../artifacts/manifest.js';
import type { ProgressStream } from '../util/progress.js';
import type { BackendName, Device } from './backends/types.js';
import type { ScheduleKind } from './schedule.js';

/** Everything `train()` accepts. Unset fields take their defaults (or, on --resume, the run's values). */
export interface TrainOptions {
  /** Base model (.onnx) to build artifacts from, with `train` (the selection spec)... */
  model?: string;
  train?: string;
  /** ...or an artifacts folder built already. */
  artifacts?: string;
  /** GLUE task name (any spelling `getGlueTask` accepts). */
  task?: string;
  epochs?: number;
  /** Optimizer updates in the run; overrides `epochs` when set. */
  maxSteps?: number;
  /** Examples per micro-batch; an update sees batchSize × gradAccum examples. */
  batchSize?: number;
  /** Batch examples of similar length together (less padding); batches still come in a seeded random order. */
  groupByLength?: boolean;
  gradAccum?: number;
  lr?: number;
  lrSchedule?: ScheduleKind;
  warmupRatio?: number;
  weightDecay?: number;
  /** Global gradient-norm clipping (default 1.0 as Hugging Face's Trainer; 0: none). Baked into the artifacts. */
  maxGradNorm?: number;
  optimizer?: 'adamw' | 'sgd';
  dropout?: number;
  maxLength?: number;
  seed?: number;
  /** Evaluate every N updates; default: at the end of each epoch (and always at the end). */
  evalEvery?: number;
  /** Stop after N evaluations in a row without improvement. */
  earlyStop?: number;
  /** Checkpoint every N updates; default: at each evaluation. */
  saveEvery?: number;
  /** Only the first N training / evaluation examples (quick runs). */
  limitTrain?: number;
  limitEval?: number;
  backend?: BackendName;
  device?: Device;
  threads?: number;
  /** tokenizer.json or vocab.txt; default: the one the artifacts name. */
  tokenizer?: string;
  /** GLUE folder (see `resolveGlueDir`). */
  data?: string;
  /** Run folder; default `runs/<task>-<spec>-<timestamp>`. */
  out?: string;
  resume?: boolean;
  newHead?: boolean;
  freezeHead?: boolean;
  /** Replace an existing run folder. */
  force?: boolean;
  /**
   * Compute the frozen layers below the first trained encoder layer once per example, keep their
   * output in memory and start every step there (native backend; see train/frozen-cache.ts).
   */
  cacheFrozen?: boolean;
  /** Memory the cached hidden states may take, in MiB (default 2048); beyond it the run goes uncached. */
  cacheBudget?: number;

  /** Tokenized-data cache root (see `loadEncodedSplit`); false: no cache. */
  cacheDir?: string | false;
  /** Abort to stop after the current step with a checkpoint (Ctrl-C). */
  signal?: AbortSignal;
  /** Where messages go (default: nowhere). */
  log?: (line: string) => void;
  /** Progress display stream (a TTY gets a live bar, anything else plain lines); default none. */
  progress?: ProgressStream;
}

/** Options that decide a run's result: a resume must not change them. */
export const RESULT_OPTIONS = [
  ['model', '<model>'], ['train', '--train'], ['artifacts', '--artifacts'], ['task', '--task'],
  ['epochs', '--epochs'], ['maxSteps', '--max-steps'], ['batchSize', '--batch-size'], ['gradAccum', '--grad-accum'],
  ['groupByLength', '--group-by-length'], ['lr', '--lr'], ['lrSchedule', '--lr-schedule'], ['warmupRatio', '--warmup-ratio'], ['weightDecay', '--weight-decay'],
  ['maxGradNorm', '--max-grad-norm'], ['optimizer', '--optimizer'], ['dropout', '--dropout'], ['maxLength', '--max-length'], ['seed', '--seed'],
  ['evalEvery', '--eval-every'], ['earlyStop', '--early-stop'], ['limitTrain', '--limit-train'], ['limitEval', '--limit-eval'],
  ['backend', '--backend'], ['tokenizer', '--tokenizer'], ['newHead', '--new-head'], ['freezeHead', '--freeze-head'],
  ['cacheFrozen', '--cache-frozen'],
] as const satisfies ReadonlyArray<readonly [keyof RunConfig & keyof TrainOptions, string]>;

/** Options that only change how a run executes, free to differ on resume. */
export const RUNTIME_OPTIONS = ['device', 'threads', 'data', 'saveEvery', 'cacheBudget'] as const;

/** `config.json` of a run folder: every option, resolved. */
export interface RunConfig {
  version: number;
  modtuneVersion: string;
  createdAt: string;
  task: string;
  /** Absolute path of the base model when the run built its artifacts, else null. */
  model: string | null;
  train: string;
  /** Absolute path of the artifacts folder used (`<run>/artifacts` when the run built them). */
  artifacts: string;
  artifactsBuilt: boolean;
  backend: BackendName;
  device: Device;
  threads: number | null;
  data: string;
  tokenizer: string;
  epochs: number;
  maxSteps: number | null;
  batchSize: number;
  gradAccum: number;
  /** Absent in runs from before the option existed (which did not group). */
  groupByLength?: boolean;
  lr: number;
  lrSchedule: ScheduleKind;
  warmupRatio: number;
  weightDecay: number;
  /** 0: no clipping (also what runs from before clipping existed did; their configs lack the field). */
  maxGradNorm?: number;
  optimizer: 'adamw' | 'sgd';
  dropout: number | null;
  maxLength: number;
  seed: number;
  evalEvery: number | null;
  earlyStop: number | null;
  saveEvery: number | null;
  limitTrain: number | null;
  limitEval: number | null;
  newHead: boolean;
  freezeHead: boolean;
  /** `--cache-frozen` (absent in runs from before it existed, which did not cache). */
  cacheFrozen?: boolean;
  /** `--cache-budget` in MiB; null: the default. */
  cacheBudget?: number | null;
  totals: RunTotals;
  /**
   * sha256 of the tokenized training set and of each dev split (see `datasetSha256`): a resume
   * must train on the very same examples, not only as many. Absent in runs from before it existed.
   */
  dataSha256?: { train: string; dev: Record<string, string> };
}

export interface RunTotals {
  trainExamples: number;
  batchesPerEpoch: number;
  stepsPerEpoch: number;
  totalSteps: number;
  warmupSteps: number;
  /** Dev split → examples evaluated. */
  evalExamples: Record<string, number>;
}

export const DEFAULTS = {
  epochs: 3, batchSize: 32, gradAccum: 1, lr: 2e-5, lrSchedule: 'linear' as ScheduleKind, warmupRatio: 0,
  weightDecay: 0.01, maxGradNorm: 1, optimizer: 'adamw' as const, maxLength: 128, seed: 42, backend: 'native' as BackendName, device: 'cpu' as Device,
};

const positiveInt = (v: unknown) => Number.isSafeInteger(v) && (v as number) >= 1;

/** Check the ranges of the numeric and enumerated options; one line per problem, naming the flag. */
export function validateOptions(o: TrainOptions): void {
  const ints: Array<[keyof TrainOptions, string]> = [
    ['epochs', '--epochs'], ['maxSteps', '--max-steps'], ['batchSize', '--batch-size'], ['gradAccum', '--grad-accum'],
    ['maxLength', '--max-length'], ['evalEvery', '--eval-every'], ['earlyStop', '--early-stop'], ['saveEvery', '--save-every'],
    ['limitTrain', '--limit-train'], ['limitEval', '--limit-eval'], ['threads', '--threads'],
  ];
  for (const [k, flag] of ints) {
    if (o[k] !== undefined && !positiveInt(o[k])) throw new ModtuneError(`${flag} must be a positive integer, got ${String(o[k])}`);
  }
  if (o.maxLength !== undefined && o.maxLength < 8) throw new ModtuneError(`--max-length must be at least 8, got ${o.maxLength}`);
  if (o.lr !== undefined && !(Number.isFinite(o.lr) && o.lr > 0)) throw new ModtuneError(`--lr must be a positive number, got ${o.lr}`);
  if (o.warmupRatio !== undefined && !(o.warmupRatio >= 0 && o.warmupRatio <= 1)) throw new ModtuneError(`--warmup-ratio must be between 0 and 1, got ${o.warmupRatio}`);
  if (o.weightDecay !== undefined && !(Number.isFinite(o.weightDecay) && o.weightDecay >= 0)) throw new ModtuneError(`--weight-decay must be a number ≥ 0, got ${o.weightDecay}`);
  if (o.maxGradNorm !== undefined && !(Number.isFinite(o.maxGradNorm) && o.maxGradNorm >= 0)) throw new ModtuneError(`--max-grad-norm must be a number ≥ 0 (0 or none: no clipping), got ${o.maxGradNorm}`);
  if (o.dropout !== undefined && !(o.dropout >= 0 && o.dropout < 1)) throw new ModtuneError(`--dropout must be in [0, 1), got ${o.dropout}`);
  if (o.seed !== undefined && !Number.isSafeInteger(o.seed)) throw new ModtuneError(`--seed must be an integer, got ${o.seed}`);
  if (o.lrSchedule !== undefined && o.lrSchedule !== 'linear' && o.lrSchedule !== 'constant') throw new ModtuneError(`--lr-schedule must be linear or constant, got '${o.lrSchedule}'`);
  if (o.optimizer !== undefined && o.optimizer !== 'adamw' && o.optimizer !== 'sgd') throw new ModtuneError(`--optimizer must be adamw or sgd, got '${o.optimizer}'`);
  if (o.cacheBudget !== undefined && !(Number.isFinite(o.cacheBudget) && o.cacheBudget > 0)) throw new ModtuneError(`--cache-budget must be a positive number of MiB, got ${o.cacheBudget}`);
  if (o.device !== undefined && o.device !== 'cpu' && o.device !== 'cuda') throw new ModtuneError(`--device must be cpu or cuda, got '${o.device}'`);
}

/**
 * The options an artifacts folder fixes (they are part of its graphs): with --artifacts they may be
 * repeated but not changed.
 */
export function checkBakedOptions(o: TrainOptions, m: Manifest, dir: string): void {
  const baked: Array<[string, unknown, unknown, string]> = [
    ['--train', o.train, m.selection.spec, 'selection'],
    ['--optimizer', o.optimizer, m.optimizer.name, 'optimizer'],
    ['--weight-decay', o.weightDecay, m.optimizer.weightDecay, 'weight decay'],
    ['--max-grad-norm', o.maxGradNorm, m.optimizer.maxGradNorm ?? 0, 'max grad norm'],
    ['--dropout', o.dropout, m.dropout.override ?? undefined, 'dropout'],
    ['--freeze-head', o.freezeHead || undefined, m.selection.freezeHead || undefined, 'frozen head'],
  ];
  for (const [flag, given, built, what] of baked) {
    if (given !== undefined && given !== built) {
      throw new ModtuneError(`${flag} ${String(given)}: the artifacts in ${dir} were built with ${what} ${built === undefined ? '(not set)' : String(built)}, which is part of their graphs; rebuild the artifacts or drop ${flag}`);
    }
  }
  if (o.newHead) throw new ModtuneError(`--new-head applies when building artifacts from a model; the artifacts in ${dir} are built already (head ${m.task.headReused ? 'reused' : 'new'})`);
}

/** The options given on this command line that differ from the run's config (for a resume). */
export function resumeMismatches(o: TrainOptions, cfg: RunConfig, canonicalTask: (t: string) => string): string[] {
  const out: string[] = [];
  for (const [key, flag] of RESULT_OPTIONS) {
    let given: unknown = o[key];
    if (given === undefined) continue;
    let saved: unknown = cfg[key];
    if (key === 'model' || key === 'artifacts' || key === 'tokenizer') given = path.resolve(String(given));
    if (key === 'task') given = canonicalTask(String(given));
    if (saved === null) saved = undefined;
    if (given !== saved) out.push(`${flag} ${fmt(given)} (the run has ${fmt(saved)})`);
  }
  return out;
}

function fmt(v: unknown): string {
  return v === undefined ? 'not set' : typeof v === 'string' ? v : String(v);
}

/** A folder-name-safe version of a selection spec. */
export function specSlug(spec: string): string {
  return spec.replace(/[^A-Za-z0-9._@=-]+/g, '_').replace(/^_+|_+$/g, '').slice(0, 60) || 'run';
}

/** `YYYYMMDD-HHMMSS` in local time. */
export function timestamp(d = new Date()): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}${p(d.getMonth() + 1)}${p(d.getDate())}-${p(d.getHours())}${p(d.getMinutes())}${p(d.getSeconds())}`;
}
