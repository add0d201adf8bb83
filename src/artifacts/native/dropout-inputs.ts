/**
 * Dropout masks as inputs of the native training models. ONNX Runtime's CPU Dropout kernel draws
 * its mask on one thread, one float at a time: a fifth of a small model's training step while the
 * other cores wait. Here each training-mode Dropout becomes
 *
 *   y = Where(mask, x · 1/(1 − ratio), 0)        mask: a bool graph input shaped like x
 *
 * and the backend draws the masks (src/train/backends/dropout-masks.ts) in a fraction of the time.
 * The backward pass differentiates the Mul and Where as it would the Dropout (rules/dropout.ts
 * computes the same Where(mask, dy · scale, 0)). A Dropout whose input shape is not made of known
 * sizes and the `batch`/`sequence` dimensions stays as it is: the backend could not size its mask.
 */
import { DataType } from '../../onnx/dtype.js';
import type { Dim, Model } from '../../onnx/graph.js';
import { inferShapes } from '../../onnx/shapes.js';
import { constantScalar } from '../../heads/patterns.js';
import { deleteUnreadInitializers, dropOutWhere } from '../../heads/lower-dropout.js';

/** Graph input names of the masks: the Dropout node's name with this suffix. */
export const DROPOUT_MASK_SUFFIX = '.mask';

/** The dimensions a mask may have besides fixed sizes: the batch's two. */
export const MASK_DIMS: ReadonlySet<string> = new Set(['batch', 'sequence']);

/**
 * Rewrite the training-mode Dropouts of `model` (ratio in (0, 1), constant) into mask inputs, in
 * place. Returns each new input's name and drop ratio, in graph-input order.
 */
export function dropoutsToMaskInputs(model: Model): Map<string, number> {
  const g = model.graph;
  let shapes: ReturnType<typeof inferShapes> | undefined;
  const ratios = new Map<string, number>();
  const unread = new Set<string>();
  for (const n of [...g.nodes]) {
    if (n.opType !== 'Dropout' || (n.domain !== '' && n.domain !== 'ai.onnx')) continue;
    const [x, ratioName, modeName] = n.inputs;
    const [y, maskOut] = n.outputs;
    if (!x || !y || !modeName || !ratioName) continue;
    const mode = constantScalar(g, modeName);
    const ratio = constantScalar(g, ratioName);
    if (!mode || ratio === undefined || !(ratio > 0 && ratio < 1)) continue;
    const shape = (shapes ??= inferShapes(model)).get(x)?.shape;
    if (!shape || !shape.every((d: Dim) => typeof d === 'number' || (typeof d === 'string' && MASK_DIMS.has(d)))) continue;

    const mask = g.uniqueName(`${n.name}${DROPOUT_MASK_SUFFIX}`);
    g.removeNodes([n]);
    g.inputs.push({ name: mask, elemType: DataType.BOOL, shape: [...shape] });
    dropOutWhere(g, n, mask, ratio);
    if (maskOut) {
      g.replaceUses(maskOut, mask);
      // A graph output keeps its name (ONNX has no output that is an input's alias).
      if (g.isGraphOutput(maskOut)) g.addNode({ opType: 'Identity', name: `${n.name}/mask`, inputs: [mask], outputs: [maskOut] });
    }
    ratios.set(mask, shortestFloat32(ratio));
    unread.add(ratioName).add(modeName);
  }
  if (ratios.size) {
    deleteUnreadInitializers(g, unread);
    g.topologicalSort();
  }
  return ratios;
}

/** The shortest decimal that reads back as the same float32 (0.1, not 0.10000000149011612). */
function shortestFloat32(x: number): number {
  for (let digits = 1; digits < 17; digits++) {
    const d = Number(x.toPrecision(digits));
    if (Math.fround(d) === Math.fround(x)) return d;
  }
  return x;
}
