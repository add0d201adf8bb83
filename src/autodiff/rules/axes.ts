import { attrInts } from '../../onnx/graph.js';
import type { RuleContext } from '../context.js';

/**
 * The axes of Squeeze/Unsqueeze (attribute before opset 13, input since): constant axes, the
 * run-time axes value, or `none` when absent.
 */
export function squeezeAxes(ctx: RuleContext): { axes: number[] } | { runtime: string } | { none: true } {
  const attr = attrInts(ctx.node, 'axes');
  if (attr) return { axes: attr };
  const input = ctx.input(1);
  if (!input) return { none: true };
  const c = ctx.constNumbers(input);
  return c ? { axes: c } : { runtime: input };
}
