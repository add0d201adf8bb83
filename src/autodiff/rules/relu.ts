import type { GradientRule } from '../context.js';

/** y = max(x, 0): the gradient passes where x > 0. */
export const reluGrad: GradientRule = (ctx) => {
  if (!ctx.needs(0)) return [];
  const x = ctx.input(0);
  const zero = ctx.scalarLike(0, x);
  return [ctx.where(ctx.op('Greater', [x, zero]), ctx.requireDy(), zero)];
};
