import type { GradientRule } from './context.js';
import { castGrad } from './rules/cast.js';
import { concatGrad } from './rules/concat.js';
import { dropoutGrad } from './rules/dropout.js';
import { addGrad, divGrad, mulGrad, negGrad, subGrad, sumGrad } from './rules/elementwise.js';
import { erfGrad } from './rules/erf.js';
import { expGrad } from './rules/exp.js';
import { expandGrad } from './rules/expand.js';
import { gatherGrad } from './rules/gather.js';
import { geluGrad } from './rules/gelu.js';
import { gemmGrad } from './rules/gemm.js';
import { identityGrad } from './rules/identity.js';
import { layerNormalizationGrad } from './rules/layer-normalization.js';
import { logGrad } from './rules/log.js';
import { logSoftmaxGrad } from './rules/log-softmax.js';
import { matMulGrad } from './rules/matmul.js';
import { negativeLogLikelihoodLossGrad } from './rules/negative-log-likelihood-loss.js';
import { powGrad } from './rules/pow.js';
import { reduceMeanGrad, reduceSumGrad } from './rules/reduce.js';
import { reciprocalGrad } from './rules/reciprocal.js';
import { reluGrad } from './rules/relu.js';
import { reshapeGrad } from './rules/reshape.js';
import { sigmoidGrad } from './rules/sigmoid.js';
import { sliceGrad } from './rules/slice.js';
import { softmaxGrad } from './rules/softmax.js';
import { softmaxCrossEntropyLossGrad } from './rules/softmax-cross-entropy-loss.js';
import { splitGrad } from './rules/split.js';
import { sqrtGrad } from './rules/sqrt.js';
import { squeezeGrad } from './rules/squeeze.js';
import { tanhGrad } from './rules/tanh.js';
import { transposeGrad } from './rules/transpose.js';
import { unsqueezeGrad } from './rules/unsqueeze.js';
import { whereGrad } from './rules/where.js';

/**
 * One gradient rule per standard-domain ONNX op type. To support another op: write
 * `rules/<op-name>.ts` exporting a `GradientRule` (see `context.ts` for the helpers), add it here,
 * and give it a finite-difference test with `expectGradients` (test/autodiff/util.ts).
 */
export const GRADIENT_RULES: ReadonlyMap<string, GradientRule> = new Map<string, GradientRule>([
  // arithmetic
  ['Add', addGrad],
  ['Sub', subGrad],
  ['Mul', mulGrad],
  ['Div', divGrad],
  ['Neg', negGrad],
  ['Sum', sumGrad],
  ['Pow', powGrad],
  ['Sqrt', sqrtGrad],
  ['Reciprocal', reciprocalGrad],
  ['Exp', expGrad],
  ['Log', logGrad],
  // activations
  ['Erf', erfGrad],
  ['Tanh', tanhGrad],
  ['Relu', reluGrad],
  ['Sigmoid', sigmoidGrad],
  ['Gelu', geluGrad],
  ['Softmax', softmaxGrad],
  ['LogSoftmax', logSoftmaxGrad],
  // linear algebra and normalisation
  ['MatMul', matMulGrad],
  ['Gemm', gemmGrad],
  ['LayerNormalization', layerNormalizationGrad],
  ['ReduceSum', reduceSumGrad],
  ['ReduceMean', reduceMeanGrad],
  // data movement
  ['Reshape', reshapeGrad],
  ['Flatten', reshapeGrad],
  ['Transpose', transposeGrad],
  ['Squeeze', squeezeGrad],
  ['Unsqueeze', unsqueezeGrad],
  ['Slice', sliceGrad],
  ['Gather', gatherGrad],
  ['Concat', concatGrad],
  ['Split', splitGrad],
  ['Expand', expandGrad],
  ['Cast', castGrad],
  ['Where', whereGrad],
  ['Identity', identityGrad],
  ['Dropout', dropoutGrad],
  // losses
  ['SoftmaxCrossEntropyLoss', softmaxCrossEntropyLossGrad],
  ['NegativeLogLikelihoodLoss', negativeLogLikelihoodLossGrad],
]);

/**
 * Ops whose outputs carry no gradient (shape computations, comparisons, constants, random and
 * integer-valued ops): a backward path that meets one simply ends there.
 */
export const NON_DIFFERENTIABLE_OPS: ReadonlySet<string> = new Set([
  'Constant', 'ConstantOfShape', 'Shape', 'Size', 'Range', 'NonZero', 'EyeLike', 'OneHot',
  'Equal', 'Less', 'LessOrEqual', 'Greater', 'GreaterOrEqual', 'Not', 'And', 'Or', 'Xor',
  'IsNaN', 'IsInf', 'ArgMax', 'ArgMin', 'Sign', 'Floor', 'Ceil', 'Round',
  'RandomNormal', 'RandomNormalLike', 'RandomUniform', 'RandomUniformLike', 'Bernoulli', 'Multinomial',
]);

/** The rule for a node, or undefined (custom domains have none). */
export function gradientRule(opType: string, domain: string): GradientRule | undefined {
  return domain === '' || domain === 'ai.onnx' ? GRADIENT_RULES.get(opType) : undefined;
}

export function isNonDifferentiable(opType: string, domain: string): boolean {
  return (domain === '' || domain === 'ai.onnx') && NON_DIFFERENTIABLE_OPS.has(opType);
}
