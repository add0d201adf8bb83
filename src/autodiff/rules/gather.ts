import { A, attrInt } from '../../onnx/graph.js';
import { DataType } from '../../onnx/dtype.js';
import { makeTensor } from '../../onnx/tensor.js';
import type { GradientRule, RuleContext } from '../context.js';
import { numericDims } from '../facts.js';

/**
 * Indices may be negative (counted from the end of the gathered axis); they are wrapped into range
 * unless they are constants that are already non-negative.
 */
function wrappedIndices(ctx: RuleContext, indices: string, x: string, axis: number): string {
  // ScatterND takes int64 indices only.
  const idx = ctx.dtype(indices) === DataType.INT64 ? indices : ctx.op('Cast', [indices], { to: A.int(DataType.INT64) });
  const c = ctx.constNumbers(indices);
  if (c && c.every((v) => v >= 0)) return idx;
  const dim = ctx.op('Gather', [ctx.shapeOf(x), ctx.em.scalar(axis, DataType.INT64)]);
  const zero = ctx.em.scalar(0, DataType.INT64);
  return ctx.where(ctx.op('Less', [idx, zero]), ctx.add(idx, dim), idx);
}

/**
 * y = Gather(x, indices, axis): y's dims are x[:axis] ++ indices.shape ++ x[axis+1:].
 * dx scatters dy back with ScatterND(reduction='add') into zeros shaped like x, so rows picked
 * several times (repeated token ids in an embedding table) accumulate. For axis 0 the scatter
 * applies directly; for another axis the gathered axis is moved to the front and back again.
 */
export const gatherGrad: GradientRule = (ctx) => {
  if (!ctx.needs(0)) return [];
  const dy = ctx.requireDy();
  const [x, indices] = [ctx.input(0), ctx.input(1)];
  let axis = attrInt(ctx.node, 'axis', 0);
  if (axis < 0) axis += ctx.requireRank(x, 'for a negative Gather axis');
  const idx = ctx.unsqueeze(wrappedIndices(ctx, indices, x, axis), [-1]);
  const add = { reduction: A.string('add') };
  if (axis === 0) return [ctx.op('ScatterND', [ctx.zerosLike(x), idx, dy], add)];

  const r = ctx.requireRank(x, 'for a Gather on an axis other than 0');
  const q = ctx.requireRank(indices, 'for a Gather on an axis other than 0');
  // x moved so the gathered axis is first; dy moved so the index dims are first.
  const xPerm = [axis, ...Array.from({ length: r }, (_, i) => i).filter((i) => i !== axis)];
  const dyPerm = [
    ...Array.from({ length: q }, (_, i) => axis + i),
    ...Array.from({ length: axis }, (_, i) => i),
    ...Array.from({ length: r - axis - 1 }, (_, i) => axis + q + i),
  ];
  const xs = numericDims(ctx.shape(x));
  const movedShape = xs ? ctx.ints(xPerm.map((p) => xs[p]!)) : ctx.op('Gather', [ctx.shapeOf(x), ctx.ints(xPerm)]);
  const zeros = ctx.op('ConstantOfShape', [movedShape], { value: A.tensor(makeTensor('', ctx.dtype(x), [1], [0])) });
  const scattered = ctx.op('ScatterND', [zeros, idx, ctx.transpose(dy, dyPerm)], add);
  const back = new Array<number>(r);
  xPerm.forEach((p, i) => (back[p] = i));
  return [ctx.transpose(scattered, back)];
};
