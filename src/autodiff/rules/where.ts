import type { GradientRule } from '../context.js';

/** y = cond ? a : b: a gets dy where cond holds, b elsewhere; cond is boolean (no gradient). */
export const whereGrad: GradientRule = (ctx) => {
  const dy = ctx.requireDy();
  const [cond, a, b, y] = [ctx.input(0), ctx.input(1), ctx.input(2), ctx.output(0)];
  const yShape = ctx.shape(y);
  const zero = ctx.scalarLike(0, y);
  return [
    undefined,
    ctx.needs(1) ? ctx.sumToShape(ctx.where(cond, dy, zero), yShape, a) : undefined,
    ctx.needs(2) ? ctx.sumToShape(ctx.where(cond, zero, dy), yShape, b) : undefined,
  ];
};
