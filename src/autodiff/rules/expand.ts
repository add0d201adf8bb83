import type { GradientRule } from '../context.js';

/** Expand broadcasts x to the output shape: sum dy back over the broadcast axes. */
export const expandGrad: GradientRule = (ctx) =>
  ctx.needs(0) ? [ctx.sumToShape(ctx.requireDy(), ctx.shape(ctx.output(0)), ctx.input(0))] : [];
