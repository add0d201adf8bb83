import { A, attrFloat } from '../../onnx/graph.js';
import type { GradientRule } from '../context.js';

/**
 * In training mode y = x · mask / (1 - ratio); otherwise y = x. The gradient reuses the forward
 * node's mask output (added when missing) instead of drawing a new one.
 */
export const dropoutGrad: GradientRule = (ctx) => {
  if (!ctx.needs(0)) return [];
  const dy = ctx.requireDy(0);
  const x = ctx.input(0);
  const ratioInput = ctx.input(1);
  const modeInput = ctx.input(2);
  // Before opset 12 there is no training mode: Dropout is the identity at inference.
  if (!modeInput) return [dy];
  const mode = ctx.constNumbers(modeInput);
  if (mode && mode[0] === 0) return [dy];

  const constRatio = ratioInput ? ctx.constNumbers(ratioInput) : [attrFloat(ctx.node, 'ratio', 0.5)];
  let scale: string;
  if (constRatio) {
    scale = ctx.scalarLike(1 / (1 - constRatio[0]!), x);
  } else {
    const r = ctx.dtype(ratioInput) === ctx.dtype(x) ? ratioInput : ctx.op('Cast', [ratioInput], { to: A.int(ctx.dtype(x)) });
    scale = ctx.div(ctx.scalarLike(1, x), ctx.sub(ctx.scalarLike(1, x), r));
  }
  // A run-time training flag: scale only when it is set (the mask is all ones otherwise).
  if (!mode) scale = ctx.where(modeInput, scale, ctx.scalarLike(1, x));
  const mask = ctx.forwardOutput(1, 'mask');
  const kept = ctx.mul(dy, scale);
  return [ctx.where(mask, kept, ctx.scalarLike(0, x))];
};
