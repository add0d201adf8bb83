import { attrFloat, attrInt } from '../../onnx/graph.js';
import type { GradientRule } from '../context.js';

/**
 * Y = alpha · op(A) @ op(B) + beta · C, op = optional transpose. Each operand gradient is itself a
 * Gemm with the right transpose flags, so no Transpose nodes are needed:
 *   dA = alpha · dY @ op(B)ᵀ          (transA = 0)     dA = alpha · op(B) @ dYᵀ   (transA = 1)
 *   dB = alpha · op(A)ᵀ @ dY          (transB = 0)     dB = alpha · dYᵀ @ op(A)   (transB = 1)
 *   dC = beta · dY summed to C's shape (C broadcasts unidirectionally).
 */
export const gemmGrad: GradientRule = (ctx) => {
  const dy = ctx.requireDy();
  const [a, b, c] = [ctx.input(0), ctx.input(1), ctx.input(2)];
  const alpha = attrFloat(ctx.node, 'alpha', 1);
  const beta = attrFloat(ctx.node, 'beta', 1);
  const transA = attrInt(ctx.node, 'transA', 0);
  const transB = attrInt(ctx.node, 'transB', 0);
  const gemm = (x: string, y: string, tx: number, ty: number) =>
    ctx.op('Gemm', [x, y], { alpha: { type: 'float', value: alpha }, transA: { type: 'int', value: tx }, transB: { type: 'int', value: ty } });
  const da = !ctx.needs(0) ? undefined : transA === 0 ? gemm(dy, b, 0, 1 - transB) : gemm(b, dy, transB, 1);
  const db = !ctx.needs(1) ? undefined : transB === 0 ? gemm(a, dy, 1 - transA, 0) : gemm(dy, a, 1, transA);
  const dc = c && ctx.needs(2) ? ctx.scale(ctx.sumToShape(dy, ctx.shape(ctx.output(0)), c), beta, c) : undefined;
  return [da, db, dc];
};
