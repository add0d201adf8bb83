/**
 * The two ONNX Runtimes a predictor runs on, behind one small interface: onnxruntime-node (native
 * CPU) and onnxruntime-web (WebAssembly; under Node its package entry is the wasm backend, in a
 * browser bundle the browser build). Sessions are created from model bytes, which both accept.
 */
import { ModtuneError } from '../errors.js';
import { disableOrtTelemetryByDefault } from '../runtime/ort-env.js';

export type RuntimeName = 'node' | 'web';

export interface RuntimeTensor {
  readonly type: string;
  readonly dims: readonly number[];
  readonly data: unknown;
}

export interface RuntimeSession {
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  run(feeds: Record<string, RuntimeTensor>): Promise<Record<string, RuntimeTensor>>;
  release(): Promise<void>;
}

export interface Runtime {
  name: RuntimeName;
  createSession(bytes: Uint8Array): Promise<RuntimeSession>;
  float32(data: Float32Array, dims: readonly number[]): RuntimeTensor;
  int64(data: BigInt64Array, dims: readonly number[]): RuntimeTensor;
}

interface OrtModule {
  Tensor: new (type: string, data: unknown, dims: readonly number[]) => RuntimeTensor;
  InferenceSession: { create(bytes: Uint8Array, options?: Record<string, unknown>): Promise<RuntimeSession> };
  env: { logLevel?: string; wasm?: { numThreads?: number } };
}

export interface RuntimeOptions {
  /** Threads for one inference (node: intra-op threads; web: wasm threads, fixed at first load). Default: the runtime's. */
  numThreads?: number;
}

let webThreads: number | undefined;

export async function loadRuntime(name: RuntimeName, opts: RuntimeOptions = {}): Promise<Runtime> {
  if (opts.numThreads !== undefined && (!Number.isInteger(opts.numThreads) || opts.numThreads < 1)) {
    throw new ModtuneError(`numThreads must be a positive integer, got ${opts.numThreads}`);
  }
  let ort: OrtModule;
  const sessionOptions: Record<string, unknown> = { logSeverityLevel: 3, graphOptimizationLevel: 'all' };
  if (name === 'node') {
    disableOrtTelemetryByDefault();
    ort = (await import('onnxruntime-node')) as unknown as OrtModule;
    if (opts.numThreads) sessionOptions.intraOpNumThreads = opts.numThreads;
  } else if (name === 'web') {
    try {
      ort = (await import('onnxruntime-web')) as unknown as OrtModule;
    } catch (e) {
      throw new ModtuneError(`cannot load onnxruntime-web (${(e as Error).message}); install it to predict with --runtime web`);
    }
    // The wasm module starts once per process; the thread count cannot change afterwards.
    const threads = opts.numThreads ?? webThreads ?? 1;
    if (webThreads !== undefined && threads !== webThreads) {
      throw new ModtuneError(`onnxruntime-web already runs with ${webThreads} thread(s) in this process; cannot switch to ${threads}`);
    }
    webThreads = threads;
    if (ort.env.wasm) ort.env.wasm.numThreads = threads;
    ort.env.logLevel = 'error';
  } else {
    throw new ModtuneError(`unknown runtime '${String(name)}'; expected node or web`);
  }
  return {
    name,
    createSession: (bytes) => ort.InferenceSession.create(bytes, sessionOptions),
    float32: (data, dims) => new ort.Tensor('float32', data, dims),
    int64: (data, dims) => new ort.Tensor('int64', data, dims),
  };
}
