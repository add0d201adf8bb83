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
 * float scalar `lr` and the 1-based step count from the float scalar `step`.
 *
 * AdamW follows torch.optim.AdamW (decoupled decay first, then the bias-corrected Adam step):
 *   p ← p·(1 − lr·wd);  m ← β1·m + (1−β1)·g;  v ← β2·v + (1−β2)·g²
 *   p ← p − (lr / (1−β1ᵗ)) · m / (√v / √(1−β2ᵗ) + ε)
 * SGD: p ← p·(1 − lr·wd) − lr·g.
 * Masked parameters move only where the mask is 1: the gradient and the decay are both masked, so
 * a masked entry keeps its exact value (and its moments stay 0).
 * With `cfg.maxGradNorm` > 0 the masked gradients are clipped by their global norm first.
 */
export function appendOptimizerUpdate(
  graph: Graph,
  params: UpdateParam[],
  cfg: OptimizerConfig,
  io: { lr: string; step: string },
): UpdateState[] {
  if (cfg.name !== 'adamw' && cfg.name !== 'sgd') throw new ModtuneError(`unknown optimizer '${cfg.name}': expected adamw or sgd`);
  checkMaxGradNorm(cfg.maxGradNorm);
  const c = (name: string, v: number) => graph.addInitializer(scalarF32(name, v));
  const op = (opType: string, inputs: string[], name: string, attrs = {}) =>
    graph.addNode({ opType, inputs, name: `/optimizer/${name}`, attrs }).outputs[0]!;
  const one = c('optimizer.one', 1);

  // Shared scalars: decay factor and, for AdamW, the bias-corrected step size and √(1−β2ᵗ).
  const decayFactor = op('Sub', [one, op('Mul', [io.lr, c('optimizer.weight_decay', cfg.weightDecay)], 'lr_wd')], 'decay_factor');
  let stepSize = io.lr;
  let sqrtBc2 = '';
  let b1 = '', b2 = '', oneMinusB1 = '', oneMinusB2 = '', eps = '';
  if (cfg.name === 'adamw') {
    b1 = c('optimizer.beta1', cfg.beta1);
    b2 = c('optimizer.beta2', cfg.beta2);
    oneMinusB1 = c('optimizer.one_minus_beta1', 1 - cfg.beta1);
    oneMinusB2 = c('optimizer.one_minus_beta2', 1 - cfg.beta2);
    eps = c('optimizer.epsilon', cfg.epsilon);
    const bc1 = op('Sub', [one, op('Pow', [b1, io.step], 'beta1_pow')], 'bias_correction1');
    const bc2 = op('Sub', [one, op('Pow', [b2, io.step], 'beta2_pow')], 'bias_correction2');
    stepSize = op('Div', [io.lr, bc1], 'step_size');
    sqrtBc2 = op('Sqrt', [bc2], 'sqrt_bias_correction2');
  }

  const masks = params.map((p) => (p.mask ? graph.addInitializer(makeTensor(`${p.name}.mask`, DataType.FLOAT, p.shape, p.mask)) : undefined));
  let grads = params.map((p, i) => (masks[i] ? op('Mul', [p.grad, masks[i]!], `${p.name}/masked_grad`) : p.grad));
  if (cfg.maxGradNorm) grads = appendGradNormClip(graph, params.map((p) => p.name), grads, cfg.maxGradNorm);

  return params.map((p, i): UpdateState => {
    const names = stateNames(p.name, cfg.name);
    const g = grads[i]!;
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
      const delta = op('Mul', [io.lr, g], `${p.name}/lr_grad`);
      graph.addNode({ opType: 'Sub', inputs: [decayed, delta], outputs: [names.updated], name: `/optimizer/${p.name}/update` });
      return state;
    }
    graph.reserveName(names.expAvgUpdated!);
    graph.reserveName(names.expAvgSqUpdated!);
    const m = graph.addNode({
      opType: 'Add', name: `/optimizer/${p.name}/exp_avg`, outputs: [names.expAvgUpdated!],
      inputs: [op('Mul', [b1, names.expAvg!], `${p.name}/b1_m`), op('Mul', [oneMinusB1, g], `${p.name}/g_scaled`)],
    }).outputs[0]!;
    const v = graph.addNode({
      opType: 'Add', name: `/optimizer/${p.name}/exp_avg_sq`, outputs: [names.expAvgSqUpdated!],
      inputs: [op('Mul', [b2, names.expAvgSq!], `${p.name}/b2_v`), op('Mul', [oneMinusB2, op('Mul', [g, g], `${p.name}/g2`)], `${p.name}/g2_scaled`)],
    }).outputs[0]!;
    const denom = op('Add', [op('Div', [op('Sqrt', [v], `${p.name}/sqrt_v`), sqrtBc2], `${p.name}/v_hat_sqrt`), eps], `${p.name}/denom`);
    const delta = op('Mul', [stepSize, op('Div', [m, denom], `${p.name}/m_over_denom`)], `${p.name}/delta`);
    // m is already masked (g was), so masked entries get delta 0 exactly.
    graph.addNode({ opType: 'Sub', inputs: [decayed, delta], outputs: [names.updated], name: `/optimizer/${p.name}/update` });
    return { ...state, expAvg: names.expAvg, expAvgSq: names.expAvgSq, expAvgUpdated: names.expAvgUpdated, expAvgSqUpdated: names.expAvgSqUpdated };
  });
}

/** A clipping threshold must be a finite number ≥ 0 (0: off). */
export function checkMaxGradNorm(v: number | undefined): void {
  if (v !== undefined && !(Number.isFinite(v) && v >= 0)) throw new ModtuneError(`--max-grad-norm must be a number ≥ 0 (0 or none: no clipping), got ${v}`);
}

/**
 * Scale `grads` by min(1, max / (‖grads‖₂ + 1e-6)), the norm taken over all of them together
 * (torch.nn.utils.clip_grad_norm_ with norm_type 2). Returns the clipped gradient values.
 */
export function appendGradNormClip(graph: Graph, names: string[], grads: string[], maxNorm: number): string[] {
  const op = (opType: string, inputs: string[], name: string, attrs = {}) =>
    graph.addNode({ opType, inputs, name: `/optimizer/clip/${name}`, attrs }).outputs[0]!;
  const squares = grads.map((g, i) => op('ReduceSumSquare', [g], `${names[i]}/sum_sq`, { keepdims: A.int(0) }));
  const norm = op('Sqrt', [squares.length === 1 ? squares[0]! : op('Sum', squares, 'total_sum_sq')], 'total_norm');
  const ratio = op('Div', [graph.addInitializer(scalarF32('optimizer.max_grad_norm', maxNorm)), op('Add', [norm, graph.addInitializer(scalarF32('optimizer.clip_epsilon', CLIP_EPSILON))], 'norm_eps')], 'ratio');
  const coef = op('Min', [ratio, graph.addInitializer(scalarF32('optimizer.clip_one', 1))], 'coefficient');
  return grads.map((g, i) => op('Mul', [g, coef], `${names[i]}/clipped`));
}

export { A };
