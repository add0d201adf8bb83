import { A, attrInt } from '../../onnx/graph.js';
import type { GradientRule } from '../context.js';

/** Concatenate the output gradients along the split axis; outputs without one contribute zeros. */
export const splitGrad: GradientRule = (ctx) => {
  if (!ctx.needs(0)) return [];
  const axis = attrInt(ctx.node, 'axis', 0);
  const parts = ctx.node.outputs.map((y, i) => ctx.dy(i) ?? ctx.zerosLike(y));
  return [parts.length === 1 ? parts[0]! : ctx.op('Concat', parts, { axis: A.int(axis) })];
};
