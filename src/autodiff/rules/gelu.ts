import { attrString } from '../../onnx/graph.js';
import type { GradientRule } from '../context.js';

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);
const TANH_CUBIC = 0.044715;

/**
 * Gelu (opset 20), written with ops that exist at opset 17.
 *   exact:  y = x·Φ(x)          dy/dx = Φ(x) + x·φ(x),  Φ(x) = ½(1 + erf(x/√2)),  φ(x) = e^(-x²/2)/√(2π)
 *   tanh:   y = ½x(1 + tanh u),  u = √(2/π)(x + 0.044715x³)
 *           dy/dx = ½(1 + t) + ½x(1 - t²)·√(2/π)(1 + 3·0.044715x²),  t = tanh u
 */
export const geluGrad: GradientRule = (ctx) => {
  if (!ctx.needs(0)) return [];
  const x = ctx.input(0);
  const dy = ctx.requireDy();
  const c = (v: number) => ctx.scalarLike(v, x);
  const approximate = attrString(ctx.node, 'approximate', 'none');
  const x2 = ctx.mul(x, x);
  let local: string;
  if (approximate === 'tanh') {
    const inner = ctx.mul(x, ctx.add(c(1), ctx.scale(x2, TANH_CUBIC, x)));
    const t = ctx.op('Tanh', [ctx.scale(inner, SQRT_2_OVER_PI, x)]);
    const first = ctx.scale(ctx.add(c(1), t), 0.5, x);
    const du = ctx.scale(ctx.add(c(1), ctx.scale(x2, 3 * TANH_CUBIC, x)), SQRT_2_OVER_PI, x);
    const second = ctx.mul(ctx.scale(x, 0.5), ctx.mul(ctx.sub(c(1), ctx.mul(t, t)), du));
    local = ctx.add(first, second);
  } else if (approximate === 'none') {
    const cdf = ctx.scale(ctx.add(c(1), ctx.op('Erf', [ctx.scale(x, Math.SQRT1_2)])), 0.5, x);
    const pdf = ctx.scale(ctx.op('Exp', [ctx.scale(x2, -0.5)]), 1 / Math.sqrt(2 * Math.PI), x);
    local = ctx.add(cdf, ctx.mul(x, pdf));
  } else {
    throw ctx.error(`attribute 'approximate' should be 'none' or 'tanh', got '${approximate}'`);
  }
  return [ctx.mul(dy, local)];
};
