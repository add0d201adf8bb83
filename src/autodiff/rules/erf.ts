import type { GradientRule } from '../context.js';

/** y = erf(x): dx = dy · 2/√π · exp(-x²). */
export const erfGrad: GradientRule = (ctx) => {
  if (!ctx.needs(0)) return [];
  const x = ctx.input(0);
  const expNegSq = ctx.op('Exp', [ctx.neg(ctx.mul(x, x))]);
  return [ctx.mul(ctx.requireDy(), ctx.scale(expNegSq, 2 / Math.sqrt(Math.PI), x))];
};
