import { A, attrInts } from '../../onnx/graph.js';
import { DataType } from '../../onnx/dtype.js';
import { makeTensor } from '../../onnx/tensor.js';
import type { GradientRule, RuleContext } from '../context.js';
import { numericDims } from '../facts.js';

interface SliceParams { starts: string; ends: string; axes: string; steps: string }

/** Slice's bounds: attributes before opset 10, inputs since. Returned as value names ('' = absent). */
function sliceInputs(ctx: RuleContext): SliceParams {
  const starts = attrInts(ctx.node, 'starts');
  if (starts) {
    const ends = attrInts(ctx.node, 'ends') ?? [];
    const axes = attrInts(ctx.node, 'axes');
    return { starts: ctx.ints(starts), ends: ctx.ints(ends), axes: axes ? ctx.ints(axes) : '', steps: '' };
  }
  return { starts: ctx.input(1), ends: ctx.input(2), axes: ctx.input(3), steps: ctx.input(4) };
}

/** Constant pads for a step-1 slice with static bounds and dims, or undefined. */
function staticPads(ctx: RuleContext, p: SliceParams, x: string): number[] | undefined {
  const dims = numericDims(ctx.shape(x));
  const starts = ctx.constNumbers(p.starts);
  const ends = ctx.constNumbers(p.ends);
  if (!dims || !starts || !ends || starts.length !== ends.length) return undefined;
  const axes = p.axes ? ctx.constNumbers(p.axes) : starts.map((_, i) => i);
  const steps = p.steps ? ctx.constNumbers(p.steps) : starts.map(() => 1);
  if (!axes || !steps || steps.some((s) => s !== 1) || axes.length !== starts.length) return undefined;
  const r = dims.length;
  const pads = new Array<number>(2 * r).fill(0);
  const clamp = (v: number, d: number) => Math.min(Math.max(v < 0 ? v + d : v, 0), d);
  for (let i = 0; i < axes.length; i++) {
    const axis = axes[i]! < 0 ? axes[i]! + r : axes[i]!;
    if (axis < 0 || axis >= r) return undefined;
    const d = dims[axis]!;
    const s = clamp(starts[i]!, d);
    const e = Math.max(clamp(ends[i]!, d), s);
    pads[axis] = s;
    pads[r + axis] = d - e;
  }
  return pads;
}

/**
 * Slice's gradient places dy back where the slice came from, zeros elsewhere. With static bounds
 * and dims (step 1) that is a Pad. Otherwise the same Slice is applied to the element positions
 * of x (an int64 iota shaped like x), and dy is scattered to those positions: correct for any
 * bounds, steps and run-time values.
 */
export const sliceGrad: GradientRule = (ctx) => {
  if (!ctx.needs(0)) return [];
  const dy = ctx.requireDy();
  const x = ctx.input(0);
  const p = sliceInputs(ctx);
  const pads = staticPads(ctx, p, x);
  if (pads) return [ctx.op('Pad', [dy, ctx.ints(pads), ctx.scalarLike(0, x)])];

  const size = ctx.op('Size', [x]);
  const iota = ctx.op('Range', [ctx.em.scalar(0, DataType.INT64), size, ctx.em.scalar(1, DataType.INT64)]);
  const positions = ctx.op('Slice', [ctx.reshapeLike(iota, x), p.starts, p.ends, p.axes, p.steps].filter((v, i) => i < 3 || v !== '' || (i === 3 && p.steps !== '')));
  const flat = ctx.ints([-1]);
  const zeros = ctx.op('ConstantOfShape', [ctx.op('Reshape', [size, flat])], { value: A.tensor(makeTensor('', ctx.dtype(x), [1], [0])) });
  const scattered = ctx.op('ScatterElements', [zeros, ctx.op('Reshape', [positions, flat]), ctx.op('Reshape', [dy, flat])], { axis: A.int(0) });
  return [ctx.reshapeLike(scattered, x)];
};
