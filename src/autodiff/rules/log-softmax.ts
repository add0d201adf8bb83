import type { GradientRule } from '../context.js';
import { softmaxAxis } from './softmax.js';

/** y = log softmax(x): dx = dy - exp(y) · Σ dy along the axis. */
export const logSoftmaxGrad: GradientRule = (ctx) => {
  if (!ctx.needs(0)) return [];
  const axis = softmaxAxis(ctx);
  const dy = ctx.requireDy();
  const total = ctx.reduceSum(dy, [axis], true);
  return [ctx.sub(dy, ctx.mul(ctx.op('Exp', [ctx.output(0)]), total))];
};
