import type { GradientRule } from '../context.js';

/** y = 1/x: dx = -dy · y². */
export const reciprocalGrad: GradientRule = (ctx) => {
  if (!ctx.needs(0)) return [];
  const y = ctx.output(0);
  return [ctx.neg(ctx.mul(ctx.requireDy(), ctx.mul(y, y)))];
};
