import type { GradientRule } from '../context.js';
import { sampleFactors, subtractAtLabels } from './softmax-cross-entropy-loss.js';

/** loss = -Σ factor_i · input[i, label_i]: dinput = -factor_i at the label positions, 0 elsewhere. */
export const negativeLogLikelihoodLossGrad: GradientRule = (ctx) => {
  if (!ctx.needs(0)) return [];
  const input = ctx.input(0);
  return [subtractAtLabels(ctx, ctx.zerosLike(input), sampleFactors(ctx, input))];
};
