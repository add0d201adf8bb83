/**
 * The optimizer update of the native backend, run in place on the JS buffers, one fused pass per
 * tensor. The same arithmetic as the train-step graph (src/artifacts/native/optimizer.ts: decoupled
 * weight decay, bias-corrected AdamW with its scalar factors folded, masks, global-norm clipping,
 * SGD), so that a step through the gradient model and this update equals a step of that graph to
 * float32 rounding. Why not the graph: onnxruntime-node hands every output back in a fresh buffer, so
 * the graph's updated parameters and both moments — three model-sized tensors — were allocated and
 * copied on every step, and held twice at its end. Here only the gradient crosses.
 */
import type { OptimizerConfig } from '../../artifacts/native/optimizer.js';
import { CLIP_EPSILON } from '../../artifacts/native/optimizer.js';
import type { StepControl } from './types.js';

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

/**
 * Apply one update with gradient = grad × control.gradScale (clipped by the global norm first when
 * cfg.maxGradNorm > 0). Writes param, expAvg and expAvgSq in place.
 */
export function hostUpdate(tensors: HostTensor[], cfg: OptimizerConfig, control: StepControl): void {
  const lr = f32(control.learningRate);
  let scale = f32(control.gradScale);
  if (cfg.maxGradNorm) {
    let sumSq = 0;
    for (const { grad, mask } of tensors) {
      if (mask) for (let i = 0; i < grad.length; i++) sumSq += grad[i]! * grad[i]! * mask[i]!;
      else for (let i = 0; i < grad.length; i++) sumSq += grad[i]! * grad[i]!;
    }
    const norm = f32(f32(Math.sqrt(sumSq)) * scale);
    scale = f32(scale * Math.min(f32(cfg.maxGradNorm / f32(norm + CLIP_EPSILON)), 1));
  }
  const decayFactor = f32(1 - f32(lr * cfg.weightDecay));
  if (cfg.name === 'sgd') {
    const lrScaled = f32(lr * scale);
    for (const t of tensors) {
      const { param: p, grad: g, mask } = t;
      const df = t.decay && cfg.weightDecay !== 0 ? decayFactor : 1;
      for (let i = 0; i < p.length; i++) {
        const keep = mask ? mask[i]! : 1;
        const decayed = keep ? p[i]! * df : p[i]!;
        p[i] = decayed - g[i]! * keep * lrScaled;
      }
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
    const { param: p, grad: g, expAvg: m, expAvgSq: v, mask } = t;
    if (!m || !v) throw new Error('hostUpdate: AdamW needs both moments');
    const df = t.decay && cfg.weightDecay !== 0 ? decayFactor : 1;
    // One pass per tensor, the hot loop of a full fine-tuning step. A masked-out entry keeps its
    // exact value: no decay, and its moments stay 0.
    for (let i = 0; i < p.length; i++) {
      if (mask !== undefined && mask[i] === 0) continue;
      const u = g[i]!;
      const mi = f32(m[i]! * b1 + u * k1);
      const vi = f32(v[i]! * b2 + u * u * k2);
      m[i] = mi;
      v[i] = vi;
      p[i] = p[i]! * df - (mi / (Math.sqrt(vi) + epsK)) * stepK;
    }
  }
}
