import { A } from '../../onnx/graph.js';
import type { GradientRule } from '../context.js';
import { isFloatType } from '../facts.js';

/** Between float types, cast the gradient back to x's type; casts to integers end the path. */
export const castGrad: GradientRule = (ctx) => {
  const x = ctx.input(0);
  if (!ctx.needs(0) || !isFloatType(ctx.dtype(x)) || !isFloatType(ctx.dtype(ctx.output(0)))) return [];
  const dy = ctx.requireDy();
  return [ctx.dtype(x) === ctx.dtype(ctx.output(0)) ? dy : ctx.op('Cast', [dy], { to: A.int(ctx.dtype(x)) })];
};
