/**
 * onnxruntime-web 1.19.2's training build, loaded from the page's /ort/ folder (copied from
 * node_modules at build time, not bundled: its Emscripten loader starts the wasm threads from its
 * own URL). One build serves inference and training. Threads only when the page is cross-origin
 * isolated (SharedArrayBuffer), else one.
 */
import { armHeapGuard, heapGuardInstalled } from '../../runtime/wasm-heap-guard.js';

export interface OrtTensor {
  readonly type: string;
  readonly dims: readonly number[];
  readonly data: Float32Array | BigInt64Array | Int32Array | Uint8Array;
}

export interface OrtInferenceSession {
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  run(feeds: Record<string, OrtTensor>): Promise<Record<string, OrtTensor>>;
  release(): Promise<void>;
}

export interface OrtTrainingSession {
  readonly trainingInputNames: readonly string[];
  readonly evalInputNames: readonly string[];
  runTrainStep(feeds: Record<string, OrtTensor>): Promise<Record<string, OrtTensor>>;
  runOptimizerStep(): Promise<void>;
  lazyResetGrad(): Promise<void>;
  runEvalStep(feeds: Record<string, OrtTensor>): Promise<Record<string, OrtTensor>>;
  getParametersSize(trainableOnly: boolean): Promise<number>;
  getContiguousParameters(trainableOnly: boolean): Promise<OrtTensor>;
  release(): Promise<void>;
}

export interface Ort {
  Tensor: new (type: string, data: unknown, dims: readonly number[]) => OrtTensor;
  InferenceSession: { create(bytes: Uint8Array, options?: Record<string, unknown>): Promise<OrtInferenceSession> };
  TrainingSession: {
    create(artifacts: { checkpointState: Uint8Array; trainModel: Uint8Array; evalModel?: Uint8Array; optimizerModel?: Uint8Array }, options?: Record<string, unknown>): Promise<OrtTrainingSession>;
  };
  env: { wasm: { numThreads?: number; wasmPaths?: string; proxy?: boolean }; logLevel?: string };
}

let loaded: Promise<Ort> | undefined;
let requestedThreads: number | undefined;

/** The page's `?threads=N` (before the runtime loads): wasm threads need cross-origin isolation all the same. */
export function requestThreads(n: number | undefined): void {
  if (n !== undefined && !(Number.isSafeInteger(n) && n >= 1 && n <= 64)) throw new Error(`threads must be an integer from 1 to 64, got ${n}`);
  requestedThreads = n;
}

export function threadCount(): number {
  if (!globalThis.crossOriginIsolated) return 1;
  return requestedThreads ?? Math.max(1, Math.min(4, navigator.hardwareConcurrency || 1));
}

export function loadOrt(): Promise<Ort> {
  loaded ??= (async () => {
    const base = new URL('./ort/', self.location.href).href;
    const ort = (await import(/* webpackIgnore: true */ `${base}ort.training.wasm.min.mjs`)) as Ort;
    ort.env.wasm.wasmPaths = base;
    ort.env.wasm.numThreads = threadCount();
    ort.env.logLevel = 'error';
    return ort;
  })();
  return loaded;
}

/**
 * Create the first training session with the heap guard armed (it hooks the wasm module as it
 * starts; see src/runtime/wasm-heap-guard.ts): getContiguousParameters corrupts the heap without it.
 */
export async function createTrainingSession(ort: Ort, artifacts: Parameters<Ort['TrainingSession']['create']>[0]): Promise<OrtTrainingSession> {
  const disarm = armHeapGuard();
  let session: OrtTrainingSession;
  try {
    session = await ort.TrainingSession.create(artifacts);
  } finally {
    disarm();
  }
  if (!heapGuardInstalled()) {
    await session.release();
    throw new Error('onnxruntime-web started without the heap guard; reading trained parameters could corrupt its memory. Reload the page.');
  }
  return session;
}

/** onnxruntime-web's messages for a wasm heap that cannot grow. */
export const WASM_OOM = /Aborted\(OOM\)|Cannot enlarge memory|Out of memory|out of memory|RangeError: (?:WebAssembly\.Memory|Array buffer allocation)|bad_alloc/i;
