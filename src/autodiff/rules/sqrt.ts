import type { GradientRule } from '../context.js';

/** y = √x: dx = dy · 0.5 / y. */
export const sqrtGrad: GradientRule = (ctx) => {
  if (!ctx.needs(0)) return [];
  const y = ctx.output(0);
  return [ctx.div(ctx.scale(ctx.requireDy(), 0.5, y), y)];
};
