import type { GradientRule } from '../context.js';
import { squeezeAxes } from './axes.js';

/**
 * Squeeze's axes count in x's rank, and so do the axes of the Unsqueeze that undoes it. Without
 * axes (drop every 1), reshape to x's shape.
 */
export const squeezeGrad: GradientRule = (ctx) => {
  if (!ctx.needs(0)) return [];
  const dy = ctx.requireDy();
  const a = squeezeAxes(ctx);
  if ('none' in a) return [ctx.reshapeLike(dy, ctx.input(0))];
  if ('runtime' in a) return [ctx.op('Unsqueeze', [dy, a.runtime])];
  return [ctx.unsqueeze(dy, a.axes)];
};
