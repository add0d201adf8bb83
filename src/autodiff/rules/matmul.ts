import { Dim, attrInts } from '../../onnx/graph.js';
import type { GradientRule, RuleContext } from '../context.js';

/** Perm swapping the last two axes of a rank-r tensor. */
function swapLast2(r: number): number[] {
  const p = Array.from({ length: r }, (_, i) => i);
  [p[r - 2], p[r - 1]] = [p[r - 1]!, p[r - 2]!];
  return p;
}

/**
 * The transposed (last two axes) forward value. A 2-D operand that is itself a 2-D Transpose (the
 * Linear weight layout of torch exports, `x @ W^T`) is transposed back by reading the weight
 * directly, sparing the node ORT would otherwise have to fold.
 */
function transposedOperand(ctx: RuleContext, v: string, rank: number): string {
  if (rank === 2) {
    const p = ctx.producer(v);
    if (p && p.opType === 'Transpose' && p.domain === '' && ctx.rank(p.inputs[0]!) === 2) {
      const perm = attrInts(p, 'perm');
      if (!perm || (perm[0] === 1 && perm[1] === 0)) return p.inputs[0]!;
    }
  }
  return ctx.transposeForward(v, swapLast2(rank));
}

/** A forward value flattened to 2-D and transposed, [K, b·s]: shared by the Q/K/V weight gradients. */
function flatTransposed(ctx: RuleContext, a: string): string {
  return ctx.em.cached(`flatT:${a}`, () => ctx.transpose(flattenTo2d(ctx, a, a), [1, 0]));
}

/** `[-1, d]` when d is static, else `[-1] ++ Shape(v)[-1:]`: the shape that flattens all but the last axis. */
function flattenTo2d(ctx: RuleContext, x: string, like: string): string {
  const s = ctx.shape(like);
  const last = s?.[s.length - 1];
  const target = typeof last === 'number'
    ? ctx.ints([-1, last])
    : ctx.op('Concat', [ctx.ints([-1]), ctx.op('Shape', [like], { start: { type: 'int', value: -1 } })], { axis: { type: 'int', value: 0 } });
  return ctx.op('Reshape', [x, target]);
}

/**
 * Y = A @ B with numpy semantics: batch dims broadcast, 1-D operands are promoted (A to [1, K],
 * B to [K, 1]) and the promoted axis removed from Y.
 *
 * dA = dY @ Bᵀ and dB = Aᵀ @ dY, each summed over the batch dims its operand was broadcast along.
 * For the common `activations[..., K] @ weight[K, N]` the weight gradient flattens the batch dims
 * into one GEMM, Aᵀ[K, b·s] @ dY[b·s, N], instead of a batched product followed by a ReduceSum.
 */
export const matMulGrad: GradientRule = (ctx) => {
  const dy = ctx.requireDy();
  const [a, b, y] = [ctx.input(0), ctx.input(1), ctx.output(0)];
  const ra = ctx.requireRank(a, 'for the MatMul gradient');
  const rb = ctx.requireRank(b, 'for the MatMul gradient');
  const yShape = ctx.shape(y);
  const aShape = ctx.shape(a)!;
  const bShape = ctx.shape(b)!;
  let da: string | undefined;
  let db: string | undefined;

  if (ra === 1 && rb === 1) {
    if (ctx.needs(0)) da = ctx.mul(dy, b);
    if (ctx.needs(1)) db = ctx.mul(dy, a);
    return [da, db];
  }

  if (ra === 1) {
    // A[K] as [1, K]: Y = batch + [N].
    const dy3 = ctx.unsqueeze(dy, [-2]); // batch + [1, N]
    const batch: Dim[] | undefined = yShape?.slice(0, -1);
    if (ctx.needs(0)) {
      const full = ctx.op('MatMul', [dy3, transposedOperand(ctx, b, rb)]); // batch + [1, K]
      da = ctx.sumToShape(full, batch && [...batch, 1, aShape[0]!], a);
    }
    if (ctx.needs(1)) {
      const full = ctx.op('MatMul', [ctx.unsqueeze(a, [1]), dy3]); // batch + [K, N]
      db = ctx.sumToShape(full, batch && [...batch, aShape[0]!, bShape[rb - 1]!], b);
    }
    return [da, db];
  }

  if (rb === 1) {
    // B[K] as [K, 1]: Y = batch(A) + [M]; B has no batch dims, so dA needs no reduction.
    if (ctx.needs(0)) da = ctx.op('MatMul', [ctx.unsqueeze(dy, [-1]), ctx.unsqueeze(b, [0])]);
    if (ctx.needs(1)) {
      // dy[b·M] @ A[b·M, K] as vector @ matrix. (Not Aᵀ @ dy: onnxruntime 1.30's Transpose→MatMul
      // fusion gets a 1-D second operand wrong.)
      const dy1 = ctx.op('Reshape', [dy, ctx.ints([-1])]);
      db = ctx.op('MatMul', [dy1, flattenTo2d(ctx, a, a)]);
    }
    return [da, db];
  }

  const batchY: Dim[] | undefined = yShape?.slice(0, -2);
  if (ctx.needs(0)) {
    const full = ctx.op('MatMul', [dy, transposedOperand(ctx, b, rb)]); // batch(Y) + [M, K]
    // With a 2-D B the batch dims of Y are A's own: nothing was broadcast.
    da = rb === 2 && ra >= 2 ? full : ctx.sumToShape(full, batchY && [...batchY, ...aShape.slice(-2)], a);
  }
  if (ctx.needs(1)) {
    if (rb === 2 && ra > 2) {
      db = ctx.op('MatMul', [flatTransposed(ctx, a), flattenTo2d(ctx, dy, y)]);
    } else {
      const full = ctx.op('MatMul', [transposedOperand(ctx, a, ra), dy]); // batch(Y) + [K, N]
      db = ra === 2 && rb >= 2 ? full : ctx.sumToShape(full, batchY && [...batchY, ...bShape.slice(-2)], b);
    }
  }
  return [da, db];
};
