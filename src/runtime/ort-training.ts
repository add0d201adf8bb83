/**
 * onnxruntime-web 1.19.2's training build under Node, with a typed wrapper.
 *
 * The package's `./training` export is closed to Node (its exports map sets the node condition to
 * null), so the CommonJS bundle is loaded by path. Sessions are created from buffers: the loader
 * fetch()es paths and URLs, which Node cannot serve. The wasm module is initialised once per
 * process, so the first `numThreads` wins.
 *
 * Native failures in this build often reject with a bare number (a C++ exception pointer) and write
 * the reason, if any, straight to file descriptor 2. The wrapper records ORT's error lines while a
 * call is in flight and turns such rejections into ModtuneErrors that name the step and file; when
 * session creation fails it retries with fewer files to find out which one ORT refused.
 */
import { createRequire } from 'node:module';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ModtuneError } from '../errors.js';
import { decodeModel } from '../onnx/io.js';
import { readCheckpoint } from '../artifacts/ort/checkpoint.js';
import { armHeapGuard, heapGuardInstalled } from './wasm-heap-guard.js';

export { heapGuardInstalled } from './wasm-heap-guard.js';

export type OrtTensorType = 'float32' | 'int32' | 'int64' | 'bool' | 'uint8' | 'int8' | 'float64';

/** The parts of onnxruntime-common's Tensor this project uses. */
export interface OrtTensor {
  readonly type: string;
  readonly dims: readonly number[];
  readonly data: Float32Array | Int32Array | BigInt64Array | Uint8Array | Int8Array | Float64Array | string[];
  readonly size: number;
}

export type OrtFeeds = Record<string, OrtTensor>;

interface RawTrainingSession {
  readonly trainingInputNames: readonly string[];
  readonly trainingOutputNames: readonly string[];
  readonly evalInputNames: readonly string[];
  readonly evalOutputNames: readonly string[];
  runTrainStep(feeds: OrtFeeds): Promise<Record<string, OrtTensor>>;
  runOptimizerStep(): Promise<void>;
  lazyResetGrad(): Promise<void>;
  runEvalStep(feeds: OrtFeeds): Promise<Record<string, OrtTensor>>;
  getParametersSize(trainableOnly: boolean): Promise<number>;
  getContiguousParameters(trainableOnly: boolean): Promise<OrtTensor>;
  loadParametersBuffer(buffer: Uint8Array, trainableOnly: boolean): Promise<void>;
  release(): Promise<void>;
}

export interface OrtTrainingModule {
  Tensor: new (type: OrtTensorType, data: ArrayLike<number> | ArrayLike<bigint> | ArrayBufferView, dims?: readonly number[]) => OrtTensor;
  TrainingSession: {
    create(
      artifacts: { checkpointState: Uint8Array; trainModel: Uint8Array; evalModel?: Uint8Array; optimizerModel?: Uint8Array },
      sessionOptions?: Record<string, unknown>,
    ): Promise<RawTrainingSession>;
  };
  env: { wasm: { numThreads?: number; wasmPaths?: unknown }; logLevel?: string; versions?: Record<string, string> };
}

const BUNDLE = 'dist/ort.training.wasm.min.js';
let loaded: { module: OrtTrainingModule; numThreads: number } | undefined;

/** Load the training build (once per process). Default: one thread, deterministic and polite on small machines. */
export async function loadOrtTraining(opts: { numThreads?: number } = {}): Promise<OrtTrainingModule> {
  const requested = opts.numThreads;
  if (requested !== undefined && (!Number.isInteger(requested) || requested < 1)) {
    throw new ModtuneError(`onnxruntime-web: numThreads must be a positive integer, got ${requested}`);
  }
  if (loaded) {
    if (requested !== undefined && requested !== loaded.numThreads) {
      throw new ModtuneError(`onnxruntime-web training build already runs with ${loaded.numThreads} thread(s) in this process; cannot switch to ${requested}`);
    }
    return loaded.module;
  }
  const require = createRequire(import.meta.url);
  const bundle = path.join(packageRoot(require), BUNDLE);
  let module: OrtTrainingModule;
  try {
    module = require(bundle) as OrtTrainingModule;
  } catch (e) {
    throw new ModtuneError(`${bundle}: cannot load onnxruntime-web's training build (${(e as Error).message}); it was removed in onnxruntime-web 1.20, install 1.19.2`);
  }
  if (typeof module.TrainingSession?.create !== 'function') {
    throw new ModtuneError(`${bundle}: this onnxruntime-web build has no TrainingSession (version ${module.env?.versions?.web ?? 'unknown'}); install 1.19.2`);
  }
  const numThreads = requested ?? 1;
  module.env.wasm.numThreads = numThreads;
  // Warnings (e.g. about unused initializers) would land on stderr unasked; errors still come through.
  module.env.logLevel = 'error';
  loaded = { module, numThreads };
  return module;
}

/**
 * The installed onnxruntime-web folder. Its exports map hides `package.json`, so resolve the Node
 * entry point and walk up to the folder whose package.json names the package.
 */
function packageRoot(require: NodeJS.Require): string {
  let entry: string;
  try {
    entry = require.resolve('onnxruntime-web');
  } catch {
    throw new ModtuneError('onnxruntime-web is not installed; the ORT training backend needs onnxruntime-web 1.19.2 (its training build)');
  }
  for (let dir = path.dirname(entry); dir !== path.dirname(dir); dir = path.dirname(dir)) {
    const manifest = path.join(dir, 'package.json');
    if (fs.existsSync(manifest) && (JSON.parse(fs.readFileSync(manifest, 'utf8')) as { name?: string }).name === 'onnxruntime-web') return dir;
  }
  throw new ModtuneError(`onnxruntime-web: cannot find the package folder above ${entry}`);
}

// ---- native error capture --------------------------------------------------------------------

type WriteSync = (fd: number, buffer: unknown, ...rest: unknown[]) => number;
const nodeFs = createRequire(import.meta.url)('fs') as { writeSync: WriteSync };
const captures = new Set<string[]>();
let originalWriteSync: WriteSync | undefined;
// ORT's log lines: optional ANSI colour, then `YYYY-MM-DD hh:mm:ss.ffffff [E:onnxruntime:...] message`.
const ORT_ERROR_LINE = /\[E:onnxruntime:[^\]]*\]\s*(.*)$/;
const ANSI = /\x1b\[[0-9;]*m/g;

/** Run `fn` while recording ORT's error log lines (which the wasm build writes to fd 2). */
async function withNativeLog<T>(fn: () => Promise<T>): Promise<{ result?: T; error?: unknown; log: string[] }> {
  const log: string[] = [];
  if (captures.size === 0) {
    originalWriteSync = nodeFs.writeSync;
    const forward = originalWriteSync;
    nodeFs.writeSync = function (this: unknown, fd: number, buffer: unknown, ...rest: unknown[]): number {
      if (fd === 2 && typeof buffer === 'string') {
        const m = ORT_ERROR_LINE.exec(buffer.replace(ANSI, '').trim());
        if (m && captures.size) {
          for (const c of captures) c.push(m[1]!);
          return Buffer.byteLength(buffer); // reported through the thrown ModtuneError instead
        }
      }
      return forward.call(this, fd, buffer, ...rest);
    } as WriteSync;
  }
  captures.add(log);
  try {
    return { result: await fn(), log };
  } catch (error) {
    return { error, log };
  } finally {
    captures.delete(log);
    if (captures.size === 0 && originalWriteSync) {
      nodeFs.writeSync = originalWriteSync;
      originalWriteSync = undefined;
    }
  }
}

function describe(error: unknown, log: string[]): string {
  const native = log.length ? log[log.length - 1]! : undefined;
  if (error instanceof WebAssembly.RuntimeError) return `the wasm runtime trapped: ${error.message}; its memory may be corrupt, restart the process`;
  if (typeof error === 'number') {
    return native ?? `ORT gave no message (native error ${error})`;
  }
  const msg = error instanceof Error ? error.message : String(error);
  return native && !msg.includes(native) ? `${msg} (${native})` : msg;
}

async function guarded<T>(what: string, fn: () => Promise<T>): Promise<T> {
  const { result, error, log } = await withNativeLog(fn);
  if (error !== undefined) throw new ModtuneError(`onnxruntime-web: ${what} failed: ${oneLine(describe(error, log))}`, { cause: error });
  return result as T;
}

function oneLine(s: string): string {
  return s.replace(/\s*\n\s*/g, ' ').trim();
}

// ---- sessions --------------------------------------------------------------------------------

export interface TrainingArtifacts {
  checkpoint: Uint8Array;
  trainModel: Uint8Array;
  evalModel?: Uint8Array;
  optimizerModel?: Uint8Array;
}

export interface CreateTrainingSessionOptions {
  numThreads?: number;
  /** Names for error messages, e.g. file paths (default: checkpoint, training model, ...). */
  labels?: Partial<Record<keyof TrainingArtifacts, string>>;
}

const DEFAULT_LABELS: Record<keyof TrainingArtifacts, string> = {
  checkpoint: 'checkpoint',
  trainModel: 'training model',
  evalModel: 'eval model',
  optimizerModel: 'optimizer model',
};

function request(a: TrainingArtifacts) {
  return {
    checkpointState: a.checkpoint,
    trainModel: a.trainModel,
    ...(a.evalModel ? { evalModel: a.evalModel } : {}),
    ...(a.optimizerModel ? { optimizerModel: a.optimizerModel } : {}),
  };
}

/** Create a training session from artifact bytes; errors name the artifact ORT refused. */
export async function createTrainingSession(artifacts: TrainingArtifacts, opts: CreateTrainingSessionOptions = {}): Promise<OrtTrainingSession> {
  const ort = await loadOrtTraining({ numThreads: opts.numThreads });
  const labels = { ...DEFAULT_LABELS, ...opts.labels };
  const disarm = armHeapGuard();
  let first: Awaited<ReturnType<typeof withNativeLog<RawTrainingSession>>>;
  try {
    first = await withNativeLog(() => ort.TrainingSession.create(request(artifacts)));
  } finally {
    disarm();
  }
  if (first.error === undefined) return new OrtTrainingSession(ort, first.result!, labels);
  throw new ModtuneError(`onnxruntime-web: creating the training session failed: ${await diagnoseCreate(ort, artifacts, labels, first.error, first.log)}`, { cause: first.error });
}

/**
 * Find the artifact at fault by adding them one at a time: checkpoint + training model, then the
 * eval model, then the optimizer model (ORT loads them in that order).
 */
async function diagnoseCreate(
  ort: OrtTrainingModule,
  a: TrainingArtifacts,
  labels: Record<keyof TrainingArtifacts, string>,
  error: unknown,
  log: string[],
): Promise<string> {
  const message = oneLine(describe(error, log));
  if (error instanceof Error && /CheckpointState/.test(error.message)) return `${labels.checkpoint}: ${message}`;
  if (error instanceof WebAssembly.RuntimeError) return message;
  const attempts: [keyof TrainingArtifacts, TrainingArtifacts][] = [
    ['trainModel', { checkpoint: a.checkpoint, trainModel: a.trainModel }],
    ['evalModel', { checkpoint: a.checkpoint, trainModel: a.trainModel, evalModel: a.evalModel }],
    ['optimizerModel', a],
  ];
  for (const [key, subset] of attempts) {
    if (!subset[key]) continue;
    const r = await withNativeLog(() => ort.TrainingSession.create(request(subset)));
    if (r.error !== undefined) {
      const undecodable = decodeProblem(subset[key]!, labels[key]);
      if (undecodable) return undecodable;
      // ORT reads the checkpoint's optimizer state only once the optimizer model is added.
      const stateProblem = key === 'optimizerModel' ? optimizerStateProblem(a.checkpoint, labels.checkpoint) : undefined;
      if (stateProblem) return stateProblem;
      const hint = key === 'optimizerModel'
        ? ' (ORT expects inputs learning_rate, step, params, gradients, first_order_moments, second_order_moments and one AdamWOptimizer node)'
        : key === 'trainModel'
          ? ' (is it a valid ONNX training graph whose parameter inputs match the checkpoint?)'
          : '';
      return `${labels[key]} was refused: ${oneLine(describe(r.error, r.log))}${hint}`;
    }
    await r.result!.release();
  }
  return message;
}

/** What is wrong with the checkpoint's optimizer state, if ORT's optimizer would refuse it. */
function optimizerStateProblem(bytes: Uint8Array, label: string): string | undefined {
  let ckpt: ReturnType<typeof readCheckpoint>;
  try {
    ckpt = readCheckpoint(bytes, { label });
  } catch (e) {
    return e instanceof ModtuneError ? e.message : undefined;
  }
  const group = ckpt.optimizerGroups.find((g) => g.name === 'group0');
  if (!group) return undefined;
  for (const t of ckpt.trainable) {
    const names = group.states.find((st) => st.param === t.name)?.momentums.map((m) => m.name) ?? [];
    if (!names.includes('momentum0') || !names.includes('momentum1')) {
      return `${label}: optimizer group 'group0' must hold momentum0 and momentum1 for every trainable parameter; '${t.name}' has [${names.join(', ')}]`;
    }
  }
  return undefined;
}

/** Our own decoder's complaint about a model ORT refused, if it has one (ORT often gives none). */
function decodeProblem(bytes: Uint8Array, label: string): string | undefined {
  try {
    decodeModel(bytes, { label });
    return undefined;
  } catch (e) {
    return e instanceof ModtuneError ? e.message : undefined;
  }
}

/** A thin typed wrapper over onnxruntime-web's TrainingSession. */
export class OrtTrainingSession {
  constructor(
    readonly ort: OrtTrainingModule,
    private readonly session: RawTrainingSession,
    private readonly labels: Record<keyof TrainingArtifacts, string>,
  ) {}

  get trainingInputNames(): readonly string[] { return this.session.trainingInputNames; }
  get trainingOutputNames(): readonly string[] { return this.session.trainingOutputNames; }
  get evalInputNames(): readonly string[] { return this.session.evalInputNames; }
  get evalOutputNames(): readonly string[] { return this.session.evalOutputNames; }

  /** Forward + backward; gradients accumulate until the next optimizer step (then call lazyResetGrad). */
  runTrainStep(feeds: OrtFeeds): Promise<Record<string, OrtTensor>> {
    return guarded(`train step (${this.labels.trainModel})`, () => this.session.runTrainStep(feeds));
  }

  runOptimizerStep(): Promise<void> {
    return guarded(`optimizer step (${this.labels.optimizerModel})`, () => this.session.runOptimizerStep());
  }

  lazyResetGrad(): Promise<void> {
    return guarded('resetting gradients', () => this.session.lazyResetGrad());
  }

  runEvalStep(feeds: OrtFeeds): Promise<Record<string, OrtTensor>> {
    return guarded(`eval step (${this.labels.evalModel})`, () => this.session.runEvalStep(feeds));
  }

  getParametersSize(trainableOnly = true): Promise<number> {
    return guarded('reading the parameter count', () => this.session.getParametersSize(trainableOnly));
  }

  /** All (or the trainable) parameters as one float32 buffer, in checkpoint order. */
  async getContiguousParameters(trainableOnly = true): Promise<Float32Array> {
    const t = await guarded('reading parameters', () => this.session.getContiguousParameters(trainableOnly));
    if (!(t.data instanceof Float32Array)) throw new ModtuneError(`onnxruntime-web: parameters came back as ${t.type}, expected float32`);
    return t.data;
  }

  /** Overwrite the (trainable) parameters from one float32 buffer laid out as getContiguousParameters returns it. */
  loadParametersBuffer(values: Float32Array, trainableOnly = true): Promise<void> {
    const bytes = new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
    return guarded('loading parameters', () => this.session.loadParametersBuffer(bytes, trainableOnly));
  }

  release(): Promise<void> {
    return guarded('releasing the session', () => this.session.release());
  }
}
