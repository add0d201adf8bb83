import { attrInts } from '../../onnx/graph.js';
import type { GradientRule } from '../context.js';

/** Transpose dy by the inverse permutation (the default reversal is its own inverse). */
export const transposeGrad: GradientRule = (ctx) => {
  if (!ctx.needs(0)) return [];
  const dy = ctx.requireDy();
  const perm = attrInts(ctx.node, 'perm');
  if (!perm) return [ctx.op('Transpose', [dy])];
  const inverse = new Array<number>(perm.length);
  perm.forEach((p, i) => {
    if (!(p >= 0 && p < perm.length)) throw ctx.error(`perm [${perm.join(', ')}] is not a permutation`);
    inverse[p] = i;
  });
  return [ctx.transpose(dy, inverse)];
};
