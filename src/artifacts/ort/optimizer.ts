/**
 * Optimizer graphs for ONNX Runtime's on-device training runtime.
 *
 * The runtime feeds exactly: learning_rate FLOAT[1], step INT64[1], params, gradients,
 * first_order_moments, second_order_moments (the last four seq(tensor(float)), one entry per
 * trainable parameter), and reads one BOOL[1] flag. Parameters and moments are updated in place by
 * the optimizer kernel (`com.microsoft.AdamWOptimizer`); a standard op's output would be a copy
 * the runtime never reads back, so every update must happen inside that one node.
 *
 * Learning rate: the JS build cannot set the group's learning rate and always feeds 0.001, so the
 * graph ignores its `learning_rate` input and computes the rate from `step` with the base rate
 * baked in: lr(step) = float32(base × factor(step − 1)), evaluated in float64 exactly as
 * `scheduledLearningRate` does in JS. `step` is 1 on the first optimizer step: the runtime feeds its
 * stored step count + 1 and increments the count after each step that reports success. Factor
 * follows Hugging Face's schedulers (LambdaLR semantics: update n uses factor(n − 1)):
 *   linear:   k < W ? k / max(1, W) : max(0, (T − k) / max(1, T − W))
 *   constant: k < W ? k / max(1, W) : 1
 *
 * AdamW uses adam_mode 0 (torch.optim.AdamW, as the native artifacts do): decoupled decay
 * p ← p·(1 − lr·wd) first, then the bias-corrected step with t = step.
 *
 * Weight decay is one number for the whole group: the runtime supports a single parameter group,
 * and AdamWOptimizer takes one weight_decay. Hugging Face's "no decay for biases and LayerNorm
 * weights" can therefore only be reproduced when all trainable parameters agree; see
 * `resolveOrtWeightDecay`.
 *
 * SGD: the runtime's optimizer only drives graphs with the AdamW inputs, and SGDOptimizerV2 with
 * sequence inputs does not load in the 1.19.2 wasm build. Plain SGD is expressed through
 * AdamWOptimizer instead (`buildSgdOptimizerModel`), exactly: β1 = β2 = 0 make m = g and
 * √v = |g|; ε = 2^40 swallows |g| (for |g| ≤ 2^16) so the denominator is exactly 2^40; the rate is
 * fed as lr·2^40 and weight_decay as wd·2^−40. Scaling by powers of two commutes with float
 * rounding, so the step is p ← p − p·lr·wd − lr·g, rounded as float32 SGD rounds it.
 */
import { ModtuneError } from '../../errors.js';
import { DataType } from '../../onnx/dtype.js';
import { A, Graph, Model } from '../../onnx/graph.js';
import { newModel } from '../../onnx/io.js';
import { makeTensor } from '../../onnx/tensor.js';
import { checkMaxGradNorm } from '../native/optimizer.js';

import type { LrSchedule } from '../manifest.js';
export type { LrSchedule };

export interface AdamWOptions {
  lr: number;
  beta1: number;
  beta2: number;
  epsilon: number;
  weightDecay: number;
  schedule: LrSchedule;
  /** Global gradient-norm clipping before the update (ORT's InplaceClipGradNorm); 0 or absent: off. */
  maxGradNorm?: number;
}

export interface SgdOptions {
  lr: number;
  weightDecay: number;
  schedule: LrSchedule;
  maxGradNorm?: number;
}

/** The exact graph input list the runtime feeds (it refuses any other). */
export const OPTIMIZER_INPUTS = ['learning_rate', 'step', 'params', 'gradients', 'first_order_moments', 'second_order_moments'] as const;
export const OPTIMIZER_FLAG = 'updated_flag';

/** SGD through AdamWOptimizer: ε and the rate scale (see the file comment). */
const SGD_SCALE = 2 ** 40;

/** The schedule's multiplier for the update whose 1-based index is `step`. */
export function scheduleFactor(s: LrSchedule, step: number): number {
  const k = step - 1;
  const w = s.warmupSteps;
  if (k < w) return k / Math.max(1, w);
  if (s.kind === 'constant') return 1;
  return Math.max(0, (s.totalSteps - k) / Math.max(1, s.totalSteps - w));
}

/** The float32 learning rate the optimizer graph uses at 1-based `step`. */
export function scheduledLearningRate(base: number, s: LrSchedule, step: number): number {
  return Math.fround(base * scheduleFactor(s, step));
}

export function buildAdamWOptimizerModel(opts: AdamWOptions): Model {
  validateCommon(opts.lr, opts.weightDecay, opts.schedule, opts.maxGradNorm);
  for (const [k, v] of [['beta1', opts.beta1], ['beta2', opts.beta2]] as const) {
    if (!(v >= 0 && v < 1)) throw new ModtuneError(`AdamW: ${k} must be in [0, 1), got ${v}`);
  }
  if (!(opts.epsilon > 0 && Number.isFinite(opts.epsilon))) throw new ModtuneError(`AdamW: epsilon must be positive, got ${opts.epsilon}`);
  return optimizerModel('adamw', opts.lr, opts.schedule, opts.maxGradNorm, {
    alpha: A.float(opts.beta1),
    beta: A.float(opts.beta2),
    epsilon: A.float(opts.epsilon),
    weight_decay: A.float(opts.weightDecay),
    adam_mode: A.int(0),
    correct_bias: A.int(1),
  });
}

export function buildSgdOptimizerModel(opts: SgdOptions): Model {
  validateCommon(opts.lr, opts.weightDecay, opts.schedule, opts.maxGradNorm);
  return optimizerModel('sgd', opts.lr * SGD_SCALE, opts.schedule, opts.maxGradNorm, {
    alpha: A.float(0),
    beta: A.float(0),
    epsilon: A.float(SGD_SCALE),
    weight_decay: A.float(opts.weightDecay / SGD_SCALE),
    adam_mode: A.int(0),
    correct_bias: A.int(1),
  });
}

/**
 * The optimizer model for `--optimizer adamw|sgd --format ort`, from the same hyper-parameters the
 * native artifacts take (beta1/beta2/epsilon are ignored for SGD).
 */
export function buildOrtOptimizerModel(cfg: AdamWOptions & { name: 'adamw' | 'sgd' }): Model {
  if (cfg.name === 'adamw') return buildAdamWOptimizerModel(cfg);
  if (cfg.name === 'sgd') return buildSgdOptimizerModel(cfg);
  throw new ModtuneError(`--format ort: unknown optimizer '${String(cfg.name)}', expected adamw or sgd`);
}

function validateCommon(lr: number, wd: number, s: LrSchedule, maxGradNorm?: number): void {
  checkMaxGradNorm(maxGradNorm);
  if (!(lr > 0 && Number.isFinite(lr))) throw new ModtuneError(`optimizer: learning rate must be positive, got ${lr}`);
  if (!(wd >= 0 && Number.isFinite(wd))) throw new ModtuneError(`optimizer: weight decay must be ≥ 0, got ${wd}`);
  if (s.kind !== 'linear' && s.kind !== 'constant') throw new ModtuneError(`optimizer: unknown schedule '${String(s.kind)}', expected linear or constant`);
  if (!Number.isInteger(s.warmupSteps) || s.warmupSteps < 0) throw new ModtuneError(`optimizer: warmup steps must be an integer ≥ 0, got ${s.warmupSteps}`);
  if (!Number.isInteger(s.totalSteps) || s.totalSteps < 0) throw new ModtuneError(`optimizer: total steps must be an integer ≥ 0, got ${s.totalSteps}`);
  if (s.kind === 'linear' && s.totalSteps < 1) throw new ModtuneError('optimizer: a linear schedule needs total steps ≥ 1');
}

function optimizerModel(kind: 'adamw' | 'sgd', base: number, s: LrSchedule, maxGradNorm: number | undefined, attrs: Record<string, ReturnType<typeof A.float>>): Model {
  const g = new Graph();
  g.name = `modtune_${kind}_optimizer`;
  g.docString = `${kind === 'sgd' ? 'SGD (through AdamWOptimizer)' : 'AdamW'}; lr = ${base / (kind === 'sgd' ? SGD_SCALE : 1)} × ${s.kind} schedule `
    + `(warmup ${s.warmupSteps}, total ${s.totalSteps}) computed from step; the learning_rate input is ignored`;
  g.inputs = [
    { name: 'learning_rate', elemType: DataType.FLOAT, shape: [1] },
    { name: 'step', elemType: DataType.INT64, shape: [1] },
    ...OPTIMIZER_INPUTS.slice(2).map((name) => ({ name, elemType: DataType.FLOAT, sequence: true })),
  ];
  g.outputs = [{ name: OPTIMIZER_FLAG, elemType: DataType.BOOL, shape: [1] }];

  const lr = appendSchedule(g, base, s);
  // The gradients arrive accumulated and scaled (grad_scale seeds the backward) and masked, so the
  // norm is the one torch.nn.utils.clip_grad_norm_ sees after loss.backward() over the update.
  let gradients = 'gradients';
  if (maxGradNorm) {
    gradients = g.addNode({
      opType: 'InplaceClipGradNorm', domain: 'com.microsoft', name: '/optimizer/clip_grad_norm',
      inputs: ['gradients'], outputs: ['clipped_gradients'], attrs: { max_norm: A.float(maxGradNorm), norm_type: A.string('fro') },
    }).outputs[0]!;
    g.docString += `; gradients clipped to global norm ${maxGradNorm}`;
  }
  g.addNode({
    opType: 'AdamWOptimizer',
    domain: 'com.microsoft',
    name: `/optimizer/${kind === 'sgd' ? 'SGDviaAdamW' : 'AdamW'}`,
    inputs: [lr, 'step', 'params', gradients, 'first_order_moments', 'second_order_moments'],
    outputs: [OPTIMIZER_FLAG],
    attrs,
  });
  return newModel(g, 17, [{ domain: 'com.microsoft', version: 1 }]);
}

/** Append float64 ops computing float32(base × factor(step − 1)); returns the FLOAT[1] value. */
function appendSchedule(g: Graph, base: number, s: LrSchedule): string {
  const c = (name: string, v: number) => g.addInitializer(makeTensor(`optimizer.${name}`, DataType.DOUBLE, [], new Float64Array([v])));
  const op = (opType: string, inputs: string[], name: string, attrs = {}) =>
    g.addNode({ opType, inputs, name: `/optimizer/schedule/${name}`, attrs }).outputs[0]!;
  const stepD = op('Cast', ['step'], 'step_as_double', { to: A.int(DataType.DOUBLE) });
  const k = op('Sub', [stepD, c('one', 1)], 'completed_steps');
  const warm = op('Div', [k, c('warmup_divisor', Math.max(1, s.warmupSteps))], 'warmup_factor');
  const after = s.kind === 'linear'
    ? op('Max', [c('zero', 0), op('Div', [op('Sub', [c('total_steps', s.totalSteps), k], 'remaining'), c('decay_divisor', Math.max(1, s.totalSteps - s.warmupSteps))], 'decay_ratio')], 'decay_factor')
    : c('constant_factor', 1);
  const factor = op('Where', [op('Less', [k, c('warmup_steps', s.warmupSteps)], 'in_warmup'), warm, after], 'factor');
  const lrD = op('Mul', [c('base_lr', base), factor], 'lr_double');
  return op('Cast', [lrD], 'lr', { to: A.int(DataType.FLOAT) });
}

// ---- weight decay ------------------------------------------------------------------------------

export interface DecayParam {
  name: string;
  /** Hugging Face convention: false for biases and LayerNorm weights. */
  decay: boolean;
  /** Only some entries train (top=/random= selections). */
  masked?: boolean;
}

/**
 * The single weight_decay the ORT optimizer graph can use for these trainable parameters.
 * policy 'exact' (default) reproduces Hugging Face's per-parameter rule or refuses: it returns 0 when
 * no parameter decays, `weightDecay` when all do, and throws when they are mixed or a masked
 * parameter would decay (AdamWOptimizer decays every entry, masked ones included). Policy
 * 'decay-all' applies `weightDecay` to every trainable parameter (the native artifacts reproduce
 * this when built with decay = true for all parameters and no masks).
 */
export function resolveOrtWeightDecay(params: DecayParam[], weightDecay: number, policy: 'exact' | 'decay-all' = 'exact'): number {
  if (weightDecay === 0) return 0;
  if (policy === 'decay-all') return weightDecay;
  const decayed = params.filter((p) => p.decay);
  if (decayed.length === 0) return 0;
  const maskedDecayed = decayed.find((p) => p.masked);
  if (maskedDecayed) {
    throw new ModtuneError(`--format ort: weight decay would also shrink the frozen entries of masked parameter '${maskedDecayed.name}' (AdamWOptimizer decays whole tensors); use --weight-decay 0 or the native format`);
  }
  const exempt = params.filter((p) => !p.decay);
  if (exempt.length > 0) {
    throw new ModtuneError(
      `--format ort: ORT's optimizer applies one weight decay to all trainable parameters, but '${decayed[0]!.name}' decays and '${exempt[0]!.name}' `
      + `(bias/LayerNorm) does not (${decayed.length} vs ${exempt.length}); use --weight-decay 0, decay all of them, or the native format`,
    );
  }
  return weightDecay;
}
