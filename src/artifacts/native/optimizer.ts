import { ModtuneError } from '../../errors.js';
import { DataType } from '../../onnx/dtype.js';
import { A, Graph } from '../../onnx/graph.js';
import { makeTensor, scalarF32 } from '../../onnx/tensor.js';

export type OptimizerName = 'adamw' | 'sgd';

/** Hyper-parameters baked into the update graph (the learning rate and step are graph inputs). */
export interface OptimizerConfig {
  name: OptimizerName;
  beta1: number;
  beta2: number;
  epsilon: number;
  weightDecay: number;
  /**
   * Global gradient-norm clipping as torch.nn.utils.clip_grad_norm_ does it: the L2 norm over all
   * trainable gradients together, every gradient scaled by min(1, maxGradNorm / (norm + 1e-6))
   * before the update. 0 or absent: no clipping.
   */
  maxGradNorm?: number;
}

/** Hugging Face Trainer's default `max_grad_norm`. */
export const DEFAULT_MAX_GRAD_NORM = 1;

/** torch.nn.utils.clip_grad_norm_'s guard against a zero norm. */
export const CLIP_EPSILON = 1e-6;

export const DEFAULT_ADAMW: OptimizerConfig = { name: 'adamw', beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 0.01 };

/** One trainable parameter as the update sees it. */
export interface UpdateParam {
  /** Parameter name (graph input holding its current value). */
  name: string;
  /** Value holding the gradient to apply. */
  grad: string;
  shape: number[];
  /** Hugging Face convention: no weight decay for biases and LayerNorm weights. */
  decay: boolean;
  /** 0/1 per entry: only entries with 1 may move (top=/random= selections). */
  mask?: Float32Array;
}

/** Names of the state tensors the update reads and writes, per parameter. */
export interface UpdateState {
  param: string;
  updated: string;
  /** AdamW moments (absent for SGD): input names and updated output names. */
  expAvg?: string;
  expAvgSq?: string;
  expAvgUpdated?: string;
  expAvgSqUpdated?: string;
}

export const stateNames = (p: string, opt: OptimizerName) => ({
  updated: `${p}.updated`,
  ...(opt === 'adamw'
    ? { expAvg: `${p}.exp_avg`, expAvgSq: `${p}.exp_avg_sq`, expAvgUpdated: `${p}.exp_avg.updated`, expAvgSqUpdated: `${p}.exp_avg_sq.updated` }
    : {}),
});

/**
 * Append the optimizer update to `graph`, in standard ONNX ops, reading the learning rate from the
 * float scalar `lr`, the 1-based step count from the float scalar `step` and, when given, the
 * gradient scale (1/K after K accumulated micro-batches) from the float scalar `gradScale`.
 *
 * AdamW follows torch.optim.AdamW (decoupled decay first, then the bias-corrected Adam step):
 *   p ← p·(1 − lr·wd);  m ← β1·m + (1−β1)·g;  v ← β2·v + (1−β2)·g²
 *   p ← p − (lr / (1−β1ᵗ)) · m / (√v / √(1−β2ᵗ) + ε)
 * SGD: p ← p·(1 − lr·wd) − lr·g.
 * Masked parameters move only where the mask is 1: the gradient and the decay are both masked, so
 * a masked entry keeps its exact value (and its moments stay 0).
 * With `cfg.maxGradNorm` > 0 the masked, scaled gradients are clipped by their global norm first.
 *
 * Every elementwise op is a full pass over a parameter-sized tensor, so the scalar factors are
 * folded before they meet one: g = c·u with u the (masked) raw gradient and c = gradScale × the
 * clipping coefficient, so (1−β1)·g = ((1−β1)·c)·u and (1−β2)·g² = ((1−β2)·c²)·u²; and
 *   step = (lr/(1−β1ᵗ)) · m / (√v/√(1−β2ᵗ) + ε) = (lr·√(1−β2ᵗ)/(1−β1ᵗ)) · m / (√v + ε·√(1−β2ᵗ)).
 * That is 13 passes per AdamW parameter (decayed, unmasked) where the textbook chain takes 17.
 */
export function appendOptimizerUpdate(
  graph: Graph,
  params: UpdateParam[],
  cfg: OptimizerConfig,
  io: { lr: string; step: string; gradScale?: string },
): UpdateState[] {
  if (cfg.name !== 'adamw' && cfg.name !== 'sgd') throw new ModtuneError(`unknown optimizer '${cfg.name}': expected adamw or sgd`);
  checkMaxGradNorm(cfg.maxGradNorm);
  const c = (name: string, v: number) => graph.addInitializer(scalarF32(name, v));
  const op = (opType: string, inputs: string[], name: string, attrs = {}) =>
    graph.addNode({ opType, inputs, name: `/optimizer/${name}`, attrs }).outputs[0]!;
  const one = c('optimizer.one', 1);

  const masks = params.map((p) => (p.mask ? graph.addInitializer(makeTensor(`${p.name}.mask`, DataType.FLOAT, p.shape, p.mask)) : undefined));
  const grads = params.map((p, i) => (masks[i] ? op('Mul', [p.grad, masks[i]!], `${p.name}/masked_grad`) : p.grad));
  // The one scalar every gradient is multiplied by (absent: 1).
  let scale: string | undefined = io.gradScale;
  if (cfg.maxGradNorm) {
    const coef = appendClipCoefficient(graph, params.map((p) => p.name), grads, cfg.maxGradNorm, scale);
    scale = scale ? op('Mul', [scale, coef], 'grad_scale_clipped') : coef;
  }

  // Shared scalars: decay factor and, for AdamW, the folded factors above.
  const decayFactor = op('Sub', [one, op('Mul', [io.lr, c('optimizer.weight_decay', cfg.weightDecay)], 'lr_wd')], 'decay_factor');
  let b1 = '', b2 = '', k1 = '', k2 = '', epsK = '', stepK = '', lrScaled = '';
  if (cfg.name === 'adamw') {
    b1 = c('optimizer.beta1', cfg.beta1);
    b2 = c('optimizer.beta2', cfg.beta2);
    const oneMinusB1 = c('optimizer.one_minus_beta1', 1 - cfg.beta1);
    const oneMinusB2 = c('optimizer.one_minus_beta2', 1 - cfg.beta2);
    k1 = scale ? op('Mul', [oneMinusB1, scale], 'grad_factor') : oneMinusB1;
    k2 = scale ? op('Mul', [oneMinusB2, op('Mul', [scale, scale], 'scale_squared')], 'grad_sq_factor') : oneMinusB2;
    const bc1 = op('Sub', [one, op('Pow', [b1, io.step], 'beta1_pow')], 'bias_correction1');
    const bc2 = op('Sub', [one, op('Pow', [b2, io.step], 'beta2_pow')], 'bias_correction2');
    const sqrtBc2 = op('Sqrt', [bc2], 'sqrt_bias_correction2');
    epsK = op('Mul', [c('optimizer.epsilon', cfg.epsilon), sqrtBc2], 'epsilon_scaled');
    stepK = op('Mul', [op('Div', [io.lr, bc1], 'step_size'), sqrtBc2], 'step_size_scaled');
  } else {
    lrScaled = scale ? op('Mul', [io.lr, scale], 'lr_scaled') : io.lr;
  }

  return params.map((p, i): UpdateState => {
    const names = stateNames(p.name, cfg.name);
    const u = grads[i]!;
    const maskName = masks[i];
    // Decoupled weight decay: p·(1 − lr·wd), restricted to the mask.
    let decayed = p.name;
    if (p.decay && cfg.weightDecay !== 0) {
      if (maskName) {
        // p − mask·p·lr·wd  ==  p·(1 − mask·(1 − decay_factor))
        const perEntry = op('Sub', [one, op('Mul', [maskName, op('Sub', [one, decayFactor], `${p.name}/lr_wd`)], `${p.name}/masked_lr_wd`)], `${p.name}/decay`);
        decayed = op('Mul', [p.name, perEntry], `${p.name}/decayed`);
      } else {
        decayed = op('Mul', [p.name, decayFactor], `${p.name}/decayed`);
      }
    }
    const state: UpdateState = { param: p.name, updated: names.updated };
    if (cfg.name === 'sgd') {
      const delta = op('Mul', [u, lrScaled], `${p.name}/lr_grad`);
      graph.addNode({ opType: 'Sub', inputs: [decayed, delta], outputs: [names.updated], name: `/optimizer/${p.name}/update` });
      return state;
    }
    graph.reserveName(names.expAvgUpdated!);
    graph.reserveName(names.expAvgSqUpdated!);
    const m = graph.addNode({
      opType: 'Add', name: `/optimizer/${p.name}/exp_avg`, outputs: [names.expAvgUpdated!],
      inputs: [op('Mul', [names.expAvg!, b1], `${p.name}/b1_m`), op('Mul', [u, k1], `${p.name}/g_scaled`)],
    }).outputs[0]!;
    const v = graph.addNode({
      opType: 'Add', name: `/optimizer/${p.name}/exp_avg_sq`, outputs: [names.expAvgSqUpdated!],
      inputs: [op('Mul', [names.expAvgSq!, b2], `${p.name}/b2_v`), op('Mul', [op('Mul', [u, u], `${p.name}/g2`), k2], `${p.name}/g2_scaled`)],
    }).outputs[0]!;
    const denom = op('Add', [op('Sqrt', [v], `${p.name}/sqrt_v`), epsK], `${p.name}/denom`);
    const delta = op('Mul', [op('Div', [m, denom], `${p.name}/m_over_denom`), stepK], `${p.name}/delta`);
    // m is already masked (u was), so masked entries get delta 0 exactly.
    graph.addNode({ opType: 'Sub', inputs: [decayed, delta], outputs: [names.updated], name: `/optimizer/${p.name}/update` });
    return { ...state, expAvg: names.expAvg, expAvgSq: names.expAvgSq, expAvgUpdated: names.expAvgUpdated, expAvgSqUpdated: names.expAvgSqUpdated };
  });
}

/** A clipping threshold must be a finite number ≥ 0 (0: off). */
export function checkMaxGradNorm(v: number | undefined): void {
  if (v !== undefined && !(Number.isFinite(v) && v >= 0)) throw new ModtuneError(`--max-grad-norm must be a number ≥ 0 (0 or none: no clipping), got ${v}`);
}

/**
 * The clipping coefficient min(1, max / (‖scale·grads‖₂ + 1e-6)), the norm taken over all gradients
 * together (torch.nn.utils.clip_grad_norm_ with norm_type 2); a float scalar value name.
 */
export function appendClipCoefficient(graph: Graph, names: string[], grads: string[], maxNorm: number, scale?: string): string {
  const op = (opType: string, inputs: string[], name: string, attrs = {}) =>
    graph.addNode({ opType, inputs, name: `/optimizer/clip/${name}`, attrs }).outputs[0]!;
  const squares = grads.map((g, i) => op('ReduceSumSquare', [g], `${names[i]}/sum_sq`, { keepdims: A.int(0) }));
  const rawNorm = op('Sqrt', [squares.length === 1 ? squares[0]! : op('Sum', squares, 'total_sum_sq')], 'raw_norm');
  const norm = scale ? op('Mul', [rawNorm, scale], 'total_norm') : rawNorm;
  const ratio = op('Div', [graph.addInitializer(scalarF32('optimizer.max_grad_norm', maxNorm)), op('Add', [norm, graph.addInitializer(scalarF32('optimizer.clip_epsilon', CLIP_EPSILON))], 'norm_eps')], 'ratio');
  return op('Min', [ratio, graph.addInitializer(scalarF32('optimizer.clip_one', 1))], 'coefficient');
}

export { A };
