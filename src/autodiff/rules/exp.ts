import type { GradientRule } from '../context.js';

/** y = eˣ: dx = dy · y. */
export const expGrad: GradientRule = (ctx) => (ctx.needs(0) ? [ctx.mul(ctx.requireDy(), ctx.output(0))] : []);
