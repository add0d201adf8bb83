import { A, attrInt, attrString } from '../../onnx/graph.js';
import type { GradientRule, RuleContext } from '../context.js';

/**
 * Per-sample factor by which each sample's loss enters the output, as a value broadcastable to the
 * labels' shape [N, d1...] (a scalar when every sample counts the same), and the labels with ignored
 * entries replaced by 0 so they index safely (their factor is 0).
 *
 * With class weights w and ignore_index, sample i counts w[label_i]·[label_i ≠ ignore]; reduction
 * 'mean' divides by the sum of those (ONNX's weighted mean), 'sum' does not, and 'none' multiplies
 * by the per-sample output gradient.
 */
export function sampleFactors(ctx: RuleContext, x: string): { factor: string; perSample: boolean; labels: string } {
  const [labels, weights] = [ctx.input(1), ctx.input(2)];
  const dLoss = ctx.requireDy(0);
  const reduction = attrString(ctx.node, 'reduction', 'mean');
  const ignore = attrInt(ctx.node, 'ignore_index');
  const to = { to: A.int(ctx.dtype(x)) };
  let safe = labels;
  let factor: string | undefined;
  if (ignore !== undefined) {
    const ignored = ctx.op('Equal', [labels, ctx.scalarLike(ignore, labels)]);
    safe = ctx.where(ignored, ctx.scalarLike(0, labels), labels);
    factor = ctx.op('Cast', [ctx.op('Not', [ignored])], to);
  }
  if (weights) {
    const w = ctx.op('Gather', [weights, safe]);
    factor = factor ? ctx.mul(w, factor) : w;
  }
  if (reduction === 'mean') {
    let count = factor ? ctx.reduceSum(factor, [], false) : ctx.op('Cast', [ctx.op('Size', [labels])], to);
    if (factor) {
      // Every sample ignored: the loss is 0, and so is its gradient (not 0/0).
      const zero = ctx.scalarLike(0, x);
      count = ctx.where(ctx.op('Equal', [count, zero]), ctx.scalarLike(1, x), count);
    }
    factor = factor ? ctx.div(factor, count) : ctx.op('Reciprocal', [count]);
  } else if (reduction !== 'sum' && reduction !== 'none') {
    throw ctx.error(`attribute 'reduction' should be 'mean', 'sum' or 'none', got '${reduction}'`);
  }
  factor = factor ? ctx.mul(factor, dLoss) : dLoss;
  const perSample = ignore !== undefined || !!weights || reduction === 'none';
  return { factor, perSample, labels: safe };
}

/**
 * Subtract the factors at the label positions along the class axis (axis 1) of `g`, i.e. add
 * -factor · onehot(label), with ScatterElements so any number of trailing dims works.
 */
export function subtractAtLabels(ctx: RuleContext, g: string, f: { factor: string; perSample: boolean; labels: string }): string {
  const idx = ctx.unsqueeze(f.labels, [1]);
  let updates = ctx.neg(f.perSample ? ctx.unsqueeze(f.factor, [1]) : f.factor);
  if (!f.perSample) updates = ctx.op('Expand', [updates, ctx.op('Shape', [idx])]);
  return ctx.op('ScatterElements', [g, idx, updates], { axis: A.int(1), reduction: A.string('add') });
}

/**
 * loss = -Σ factor_i · log softmax(scores)[i, label_i].
 * dscores = factor_i · (softmax(scores) - onehot(label_i)), the softmax taken from the forward node's
 * log_prob output (added when missing). Labels and weights get no gradient.
 */
export const softmaxCrossEntropyLossGrad: GradientRule = (ctx) => {
  if (!ctx.needs(0)) return [];
  const scores = ctx.input(0);
  const f = sampleFactors(ctx, scores);
  const probs = ctx.op('Exp', [ctx.forwardOutput(1, 'log_prob')]);
  const scaled = ctx.mul(probs, f.perSample ? ctx.unsqueeze(f.factor, [1]) : f.factor);
  return [subtractAtLabels(ctx, scaled, f)];
};
