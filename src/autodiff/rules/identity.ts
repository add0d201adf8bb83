import type { GradientRule } from '../context.js';

/** Identity passes the gradient through unchanged. */
export const identityGrad: GradientRule = (ctx) => (ctx.needs(0) ? [ctx.requireDy()] : []);
