import type { GradientRule } from '../context.js';
import { squeezeAxes } from './axes.js';

/** Unsqueeze's axes count in y's rank, and so do the axes of the Squeeze that undoes it. */
export const unsqueezeGrad: GradientRule = (ctx) => {
  if (!ctx.needs(0)) return [];
  const dy = ctx.requireDy();
  const a = squeezeAxes(ctx);
  if ('none' in a) throw ctx.error('Unsqueeze without axes');
  if ('runtime' in a) return [ctx.op('Squeeze', [dy, a.runtime])];
  return [ctx.squeeze(dy, a.axes)];
};
