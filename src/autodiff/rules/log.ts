import type { GradientRule } from '../context.js';

/** y = ln x: dx = dy / x. */
export const logGrad: GradientRule = (ctx) => (ctx.needs(0) ? [ctx.div(ctx.requireDy(), ctx.input(0))] : []);
