import type { GradientRule } from '../context.js';

/** y = σ(x): dx = dy · y · (1 - y). */
export const sigmoidGrad: GradientRule = (ctx) => {
  if (!ctx.needs(0)) return [];
  const y = ctx.output(0);
  return [ctx.mul(ctx.requireDy(), ctx.mul(y, ctx.sub(ctx.scalarLike(1, y), y)))];
};
