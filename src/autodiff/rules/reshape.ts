import type { GradientRule } from '../context.js';

/** Reshape and Flatten only move elements: reshape dy back to x's shape. */
export const reshapeGrad: GradientRule = (ctx) => (ctx.needs(0) ? [ctx.reshapeLike(ctx.requireDy(), ctx.input(0))] : []);
