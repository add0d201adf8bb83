import type { GradientRule } from '../context.js';

/** y = tanh(x): dx = dy · (1 - y²). */
export const tanhGrad: GradientRule = (ctx) => {
  if (!ctx.needs(0)) return [];
  const y = ctx.output(0);
  return [ctx.mul(ctx.requireDy(), ctx.sub(ctx.scalarLike(1, y), ctx.mul(y, y)))];
};
