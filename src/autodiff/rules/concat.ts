import { A, attrInt } from '../../onnx/graph.js';
import type { GradientRule } from '../context.js';

/**
 * Split dy along the concat axis into pieces the size of each input. The sizes are constants when
 * the shapes know them, else gathered from each input's run-time shape.
 */
export const concatGrad: GradientRule = (ctx) => {
  const inputs = ctx.node.inputs;
  if (!inputs.some((_, i) => ctx.needs(i))) return [];
  const dy = ctx.requireDy();
  const axis = attrInt(ctx.node, 'axis');
  if (axis === undefined) throw ctx.error(`attribute 'axis' is missing`);
  const sizes = inputs.map((x) => {
    const s = ctx.shape(x);
    if (!s) return undefined;
    const d = s[axis < 0 ? s.length + axis : axis];
    return typeof d === 'number' ? d : undefined;
  });
  const split = sizes.every((d) => d !== undefined)
    ? ctx.ints(sizes as number[])
    : ctx.op('Concat', inputs.map((x, i) => (sizes[i] !== undefined ? ctx.ints([sizes[i]!]) : ctx.op('Gather', [ctx.shapeOf(x), ctx.ints([axis])]))), { axis: A.int(0) });
  const pieces = ctx.opMulti('Split', [dy, split], inputs.length, { axis: A.int(axis) });
  return pieces.map((p, i) => (ctx.needs(i) ? p : undefined));
};
