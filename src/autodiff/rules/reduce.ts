import { A, Dim, attrInt, attrInts } from '../../onnx/graph.js';
import type { GradientRule, RuleContext } from '../context.js';
import { numericDims } from '../facts.js';

/**
 * Reduce ops give their axes as an attribute (ReduceSum before 13, the others before 18) or as an
 * optional second input; both forms are read. Returns constant axes, or the run-time axes value.
 */
function reduceAxes(ctx: RuleContext): { axes?: number[]; runtime?: string } {
  const attr = attrInts(ctx.node, 'axes');
  if (attr) return { axes: attr };
  const input = ctx.input(1);
  if (!input) return { axes: [] };
  const c = ctx.constNumbers(input);
  return c ? { axes: c } : { runtime: input };
}

/**
 * How many elements each output of the mean averages, when the shapes know it: the product of x's
 * dims over the reduced axes (symbolic batch/sequence dims elsewhere do not matter).
 */
function reducedCount(ctx: RuleContext): number | undefined {
  const xs = ctx.shape(ctx.input(0));
  const { axes } = reduceAxes(ctx);
  if (!xs || !axes) return undefined;
  const noop = attrInt(ctx.node, 'noop_with_empty_axes', 0) === 1;
  if (axes.length === 0 && noop) return 1;
  const dims = axes.length === 0 ? xs : axes.map((a) => xs[a < 0 ? a + xs.length : a]);
  const known = numericDims(dims as Dim[]);
  return known ? known.reduce((a, b) => a * b, 1) : undefined;
}

/** Broadcast dy back over the reduced axes: re-insert them (when not kept) and expand to x. */
function spread(ctx: RuleContext): string | undefined {
  const dy = ctx.requireDy();
  const x = ctx.input(0);
  const keepdims = attrInt(ctx.node, 'keepdims', 1) === 1;
  const noop = attrInt(ctx.node, 'noop_with_empty_axes', 0) === 1;
  const { axes, runtime } = reduceAxes(ctx);
  if (axes && axes.length === 0 && noop) return dy;
  let g = dy;
  if (!keepdims) {
    // Unsqueeze's axes count in its output's rank, which is x's rank: the reduce's own axes
    // (negative ones included) mean the same positions.
    if (runtime) g = ctx.op('Unsqueeze', [dy, runtime]);
    else if (axes!.length) g = ctx.unsqueeze(dy, axes!);
  }
  return ctx.op('Expand', [g, ctx.shapeOf(x)]);
}

export const reduceSumGrad: GradientRule = (ctx) => (ctx.needs(0) ? [spread(ctx)] : []);

/** ReduceMean: as ReduceSum, times (output size / input size). */
export const reduceMeanGrad: GradientRule = (ctx) => {
  if (!ctx.needs(0)) return [];
  const g = spread(ctx)!;
  const x = ctx.input(0);
  const y = ctx.output(0);
  const n = reducedCount(ctx);
  if (n !== undefined) return [ctx.scale(g, 1 / n, x)];
  const to = { to: A.int(ctx.dtype(x)) };
  const ratio = ctx.div(ctx.op('Cast', [ctx.op('Size', [y])], to), ctx.op('Cast', [ctx.op('Size', [x])], to));
  return [ctx.mul(g, ratio)];
};
