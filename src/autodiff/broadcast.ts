import { Dim } from '../onnx/graph.js';
import { sameDim } from '../onnx/shapes.js';

/**
 * How to undo broadcasting: a gradient of shape `from` (the broadcast result) must be summed down
 * to `to` (the shape of the input that was broadcast).
 *
 * - `same`: the shapes are provably equal, nothing to emit;
 * - `reduce`: sum over `axes` (axes of `from`), then drop the first `drop` axes (the ones `to` was
 *   left-padded with), which are size 1 by then;
 * - `dynamic`: the shapes do not prove which axes broadcast; decide at run time.
 */
export type SumPlan =
  | { kind: 'same' }
  | { kind: 'reduce'; axes: number[]; drop: number }
  | { kind: 'dynamic' };

export function planSumToShape(from: Dim[] | undefined, to: Dim[] | undefined): SumPlan {
  if (!from || !to || to.length > from.length) return { kind: 'dynamic' };
  const drop = from.length - to.length;
  const axes: number[] = [];
  for (let i = 0; i < from.length; i++) {
    const f = from[i]!;
    const t = i < drop ? 1 : to[i - drop]!;
    if (t === 1) {
      // Summing over an axis that turns out to be 1 at run time is harmless, so a static 1 in the
      // target is enough to decide, whatever the source dim is.
      if (f !== 1) axes.push(i);
    } else if (typeof t === 'number') {
      // A target dim > 1 cannot have been broadcast: the result dim equals it.
    } else if (f === 1) {
      // The result dim is 1, so the target dim is 1 too: nothing to sum.
    } else if (t === null || f === null || !sameDim(f, t)) {
      // A symbolic target dim might be 1 at run time and broadcast against a different dim.
      return { kind: 'dynamic' };
    }
  }
  if (axes.length === 0 && drop === 0) return { kind: 'same' };
  return { kind: 'reduce', axes, drop };
}
