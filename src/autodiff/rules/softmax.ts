import { attrInt } from '../../onnx/graph.js';
import type { GradientRule, RuleContext } from '../context.js';

/**
 * The axis Softmax/LogSoftmax normalise over. Since opset 13 it is a single axis (default -1);
 * before, the input was flattened to 2-D at `axis` (default 1), which only matches when that is the
 * last axis: other cases must be rewritten by upgradeOpset first.
 */
export function softmaxAxis(ctx: RuleContext): number {
  const x = ctx.input(0);
  if (ctx.sourceOpset >= 13) return attrInt(ctx.node, 'axis', -1);
  const axis = attrInt(ctx.node, 'axis', 1);
  const rank = ctx.rank(x);
  if (axis === -1 || (rank !== undefined && axis === rank - 1)) return -1;
  throw ctx.error(`opset-${ctx.sourceOpset} ${ctx.node.opType} over axis ${axis} flattens its input; run upgradeOpset before building the backward graph`);
}

/** y = softmax(x): dx = y · (dy - Σ(dy · y)) along the axis. */
export const softmaxGrad: GradientRule = (ctx) => {
  if (!ctx.needs(0)) return [];
  const axis = softmaxAxis(ctx);
  const dy = ctx.requireDy();
  const y = ctx.output(0);
  const dot = ctx.reduceSum(ctx.mul(dy, y), [axis], true);
  return [ctx.mul(y, ctx.sub(dy, dot))];
};
