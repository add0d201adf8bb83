import { DataType } from '../../onnx/dtype.js';
import { attrFloat, attrInt } from '../../onnx/graph.js';
import type { GradientRule, RuleContext } from '../context.js';

/** The normalised axes [axis, ..., rank-1], written with negative indices when possible. */
function normalizedAxes(ctx: RuleContext, x: string): number[] {
  const axis = attrInt(ctx.node, 'axis', -1);
  if (axis < 0) return Array.from({ length: -axis }, (_, i) => axis + i);
  const rank = ctx.requireRank(x, `for LayerNormalization axis ${axis}`);
  return Array.from({ length: rank - axis }, (_, i) => axis + i);
}

/**
 * Mean and 1/σ of x over the normalised axes, shaped to broadcast against x. For float inputs these
 * are the forward node's optional outputs (added when the exporter did not request them), so nothing
 * is recomputed; their type is `stash_type` (float), so other input types recompute them.
 */
function statistics(ctx: RuleContext, x: string, axes: number[]): { mean: string; invStd: string } {
  const stash = attrInt(ctx.node, 'stash_type', DataType.FLOAT);
  if (ctx.dtype(x) === DataType.FLOAT && stash === DataType.FLOAT) {
    return { mean: ctx.forwardOutput(1, 'Mean'), invStd: ctx.forwardOutput(2, 'InvStdDev') };
  }
  const mean = ctx.reduceMean(x, axes, true);
  const centred = ctx.sub(x, mean);
  const variance = ctx.reduceMean(ctx.mul(centred, centred), axes, true);
  const eps = ctx.scalarLike(attrFloat(ctx.node, 'epsilon', 1e-5), x);
  return { mean, invStd: ctx.op('Reciprocal', [ctx.op('Sqrt', [ctx.add(variance, eps)])]) };
}

/**
 * y = x̂ · scale + bias with x̂ = (x - mean) / σ over the trailing axes.
 *   dbias  = Σ dy,  dscale = Σ dy · x̂   (summed over the leading axes, i.e. back to their shapes)
 *   dx     = (1/σ) · (g - mean(g) - x̂ · mean(g · x̂))  with g = dy · scale
 */
export const layerNormalizationGrad: GradientRule = (ctx) => {
  const dy = ctx.requireDy(0);
  const [x, scale, bias, y] = [ctx.input(0), ctx.input(1), ctx.input(2), ctx.output(0)];
  const yShape = ctx.shape(y);
  const dBias = bias && ctx.needs(2) ? ctx.sumToShape(dy, yShape, bias) : undefined;
  if (!ctx.needs(0) && !ctx.needs(1)) return [undefined, undefined, dBias];

  const axes = normalizedAxes(ctx, x);
  const { mean, invStd } = statistics(ctx, x, axes);
  const xHat = ctx.mul(ctx.sub(x, mean), invStd);
  const dScale = ctx.needs(1) ? ctx.sumToShape(ctx.mul(dy, xHat), yShape, scale) : undefined;
  let dx: string | undefined;
  if (ctx.needs(0)) {
    const g = ctx.mul(dy, scale);
    const meanG = ctx.reduceMean(g, axes, true);
    const meanGx = ctx.reduceMean(ctx.mul(g, xHat), axes, true);
    dx = ctx.mul(invStd, ctx.sub(ctx.sub(g, meanG), ctx.mul(xHat, meanGx)));
  }
  return [dx, dScale, dBias];
};
