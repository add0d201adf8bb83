import type { GradientRule } from '../context.js';

/**
 * y = a^b. da = dy · b · a^(b-1), specialised when b is a constant (the LayerNorm variance's
 * Pow(x, 2) becomes dy · 2a); db = dy · y · ln(a).
 */
export const powGrad: GradientRule = (ctx) => {
  const dy = ctx.requireDy();
  const [a, b, y] = [ctx.input(0), ctx.input(1), ctx.output(0)];
  const yShape = ctx.shape(y);
  let da: string | undefined;
  if (ctx.needs(0)) {
    const c = ctx.constNumbers(b);
    if (c && c.length === 1) {
      const e = c[0]!;
      const local = e === 1 ? undefined : e === 2 ? a : ctx.op('Pow', [a, ctx.scalarLike(e - 1, a)]);
      da = ctx.scale(local ? ctx.mul(dy, local) : dy, e, a);
    } else {
      const bAsA = ctx.dtype(b) === ctx.dtype(a) ? b : ctx.op('CastLike', [b, a]);
      const local = ctx.mul(bAsA, ctx.op('Pow', [a, ctx.sub(bAsA, ctx.scalarLike(1, a))]));
      da = ctx.mul(dy, local);
    }
    da = ctx.sumToShape(da, yShape, a);
  }
  const db = ctx.needs(1) ? ctx.sumToShape(ctx.mul(ctx.mul(dy, y), ctx.op('Log', [a])), yShape, b) : undefined;
  return [da, db];
};
