/**
 * The optimizer update of the native backend, run in place on the JS buffers, one fused pass per
 * tensor in WebAssembly SIMD (host-update.wat). The same arithmetic as the train-step graph
 * (src/artifacts/native/optimizer.ts: decoupled weight decay, bias-corrected AdamW with its scalar
 * factors folded, masks, global-norm clipping, SGD), in float32 as there, so that a step through the gradient model and this update equals a step of that graph to
 * float32 rounding. Why not the graph: onnxruntime-node hands every output back in a fresh buffer, so
 * the graph's updated parameters and both moments — three model-sized tensors — were allocated and
 * copied on every step, and held twice at its end. Here only the gradient crosses.
 */
import type { OptimizerConfig } from '../../artifacts/native/optimizer.js';
import { CLIP_EPSILON } from '../../artifacts/native/optimizer.js';
import type { StepControl } from './types.js';
import { HOST_UPDATE_WASM } from './host-update-wasm.js';

/** One trainable tensor and its state, updated in place. */
export interface HostTensor {
  param: Float32Array;
  grad: Float32Array;
  /** AdamW moments (absent for SGD). */
  expAvg?: Float32Array;
  expAvgSq?: Float32Array;
  /** Hugging Face's rule: no weight decay for biases and LayerNorm weights. */
  decay: boolean;
  /** 0/1 per entry: only entries with 1 may move. */
  mask?: Float32Array;
}

const f32 = Math.fround;

/** Floats per region of the kernel's memory (host-update.wat). */
const CHUNK = 16384;
const REGION = { param: 0, grad: 1, expAvg: 2, expAvgSq: 3, mask: 4 } as const;

interface Kernel {
  adamw(n: number, b1: number, b2: number, k1: number, k2: number, df: number, eps: number, step: number, masked: number): void;
  sgd(n: number, df: number, lr: number, masked: number): void;
  sumsq(n: number, masked: number): number;
  /** The five regions, CHUNK floats each. */
  regions: Float32Array[];
}

let kernel: Kernel | undefined;
function getKernel(): Kernel {
  if (!kernel) {
    const instance = new WebAssembly.Instance(new WebAssembly.Module(Buffer.from(HOST_UPDATE_WASM, 'base64')));
    const e = instance.exports as unknown as Omit<Kernel, 'regions'> & { memory: WebAssembly.Memory };
    const regions = Object.values(REGION).map((r) => new Float32Array(e.memory.buffer, r * CHUNK * 4, CHUNK));
    kernel = { adamw: e.adamw, sgd: e.sgd, sumsq: e.sumsq, regions };
  }
  return kernel;
}

type Field = keyof typeof REGION;

/**
 * Runs `body` over `t` one chunk at a time: the `load` fields are copied into the kernel's regions
 * first, the `store` fields copied back after. The gradient region's lanes past the chunk's end
 * are cleared, so that whole-vector sums do not read stale values.
 */
function chunked(k: Kernel, t: HostTensor, load: Field[], store: Field[], body: (n: number) => void): void {
  const len = t.param.length;
  for (let off = 0; off < len; off += CHUNK) {
    const n = Math.min(CHUNK, len - off);
    for (const f of load) k.regions[REGION[f]]!.set(t[f]!.subarray(off, off + n));
    if (n % 4) k.regions[REGION.grad]!.fill(0, n, (n + 3) & ~3);
    body(n);
    for (const f of store) t[f]!.set(k.regions[REGION[f]]!.subarray(0, n), off);
  }
}

/**
 * Apply one update with gradient = grad × control.gradScale (clipped by the global norm first when
 * cfg.maxGradNorm > 0). Writes param, expAvg and expAvgSq in place. A masked-out entry keeps its
 * exact value: no decay, and its moments stay 0.
 */
export function hostUpdate(tensors: HostTensor[], cfg: OptimizerConfig, control: StepControl): void {
  const k = getKernel();
  const lr = f32(control.learningRate);
  let scale = f32(control.gradScale);
  if (cfg.maxGradNorm) {
    let sumSq = 0;
    for (const t of tensors) {
      const masked = t.mask ? 1 : 0;
      chunked(k, t, masked ? ['grad', 'mask'] : ['grad'], [], (n) => { sumSq += k.sumsq(n, masked); });
    }
    const norm = f32(f32(Math.sqrt(sumSq)) * scale);
    scale = f32(scale * Math.min(f32(cfg.maxGradNorm / f32(norm + CLIP_EPSILON)), 1));
  }
  const decayFactor = f32(1 - f32(lr * cfg.weightDecay));
  if (cfg.name === 'sgd') {
    const lrScaled = f32(lr * scale);
    for (const t of tensors) {
      const df = t.decay && cfg.weightDecay !== 0 ? decayFactor : 1;
      const masked = t.mask ? 1 : 0;
      chunked(k, t, masked ? ['param', 'grad', 'mask'] : ['param', 'grad'], ['param'], (n) => k.sgd(n, df, lrScaled, masked));
    }
    return;
  }
  const b1 = cfg.beta1, b2 = cfg.beta2;
  const k1 = f32(f32(1 - b1) * scale);
  const k2 = f32(f32(1 - b2) * f32(scale * scale));
  const bc1 = f32(1 - f32(b1 ** control.step));
  const sqrtBc2 = f32(Math.sqrt(f32(1 - f32(b2 ** control.step))));
  const epsK = f32(cfg.epsilon * sqrtBc2);
  const stepK = f32(f32(lr / bc1) * sqrtBc2);
  for (const t of tensors) {
    if (!t.expAvg || !t.expAvgSq) throw new Error('hostUpdate: AdamW needs both moments');
    const df = t.decay && cfg.weightDecay !== 0 ? decayFactor : 1;
    const masked = t.mask ? 1 : 0;
    const load: Field[] = ['param', 'grad', 'expAvg', 'expAvgSq'];
    chunked(k, t, masked ? [...load, 'mask'] : load, ['param', 'expAvg', 'expAvgSq'], (n) => k.adamw(n, b1, b2, k1, k2, df, epsK, stepK, masked));
  }
}
