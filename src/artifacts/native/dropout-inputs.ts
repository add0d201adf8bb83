/**
 * Dropout masks as inputs of the native training models. ONNX Runtime's CPU Dropout kernel draws
 * its mask on one thread, one float at a time: a fifth of a small model's training step while the
 * other cores wait. Here each training-mode Dropout becomes
 *
 *   y = (x · Cast(mask)) · 1/(1 − ratio)        mask: a bool graph input shaped like x
 *
 * and the backend draws the masks (src/train/backends/dropout-masks.ts) in a fraction of the time.
 * Multiplying by the mask, as ONNX's Dropout defines it, rather than Where(mask, x, 0): ONNX
 * Runtime's Where kernel costs about five times a Mul over the same tensor. The backward pass
 * (dx = dy · Cast(mask) · scale, through the Mul rule) casts the mask again (see
 * `recastMasksForBackward`). The scale comes last so that ONNX Runtime folds it into a MatMul that
 * follows (the attention probabilities' dropout). A Dropout whose input shape is not made of known
 * sizes and the `batch`/`sequence` dimensions stays as it is: the backend could not size its mask.
 */
import { DataType } from '../../onnx/dtype.js';
import { A, isOnnxOp, type Dim, type Graph, type Model, type Node } from '../../onnx/graph.js';
import { scalarF32 } from '../../onnx/tensor.js';
import { inferShapes } from '../../onnx/shapes.js';
import { constantScalar } from '../../heads/patterns.js';
import { deleteUnreadInitializers } from '../../heads/lower-dropout.js';

/** Graph input names of the masks: the Dropout node's name with this suffix. */
export const DROPOUT_MASK_SUFFIX = '.mask';

/** The batch's two symbolic dimensions: besides fixed sizes, the only ones the backend can size. */
export const BATCH_DIMS: ReadonlySet<string> = new Set(['batch', 'sequence']);

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
    if (!isOnnxOp(n, 'Dropout')) continue;
    const [x, ratioName, modeName] = n.inputs;
    const [y, maskOut] = n.outputs;
    if (!x || !y || !modeName || !ratioName) continue;
    const mode = constantScalar(g, modeName);
    const ratio = constantScalar(g, ratioName);
    if (!mode || ratio === undefined || !(ratio > 0 && ratio < 1)) continue;
    const info = (shapes ??= inferShapes(model)).get(x);
    const shape = info?.shape;
    // The scale is a float32 constant: the models train in float32.
    if (!info || info.elemType !== DataType.FLOAT || !shape || !shape.every((d: Dim) => typeof d === 'number' || (typeof d === 'string' && BATCH_DIMS.has(d)))) continue;

    const mask = g.uniqueName(`${n.name}${DROPOUT_MASK_SUFFIX}`);
    g.removeNodes([n]);
    g.inputs.push({ name: mask, elemType: DataType.BOOL, shape: [...shape] });
    dropOutMul(g, n, mask, ratio);
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

/** y = (x · Cast(keep)) · 1/(1 − ratio), in place of Dropout node `n` (already removed). */
function dropOutMul(g: Graph, n: Node, keep: string, ratio: number): void {
  const [x, y] = [n.inputs[0]!, n.outputs[0]!];
  const keepFloat = g.addNode({ opType: 'Cast', name: `${n.name}/Cast`, inputs: [keep], attrs: { to: A.int(DataType.FLOAT) } }).outputs[0]!;
  const kept = g.addNode({ opType: 'Mul', name: `${n.name}/Mul`, inputs: [x, keepFloat] }).outputs[0]!;
  const scale = g.addInitializer(scalarF32(`${n.name}/scale`, 1 / (1 - ratio)));
  g.addNode({ opType: 'Mul', name: `${n.name}/Scale`, inputs: [kept, scale], outputs: [y] });
}

/**
 * Give the backward pass its own cast of each mask. Sharing the forward's Cast would keep every
 * float mask alive from the forward pass to the backward — 4 bytes an entry where the bool input
 * holds 1, 150 MB more at the peak of a bert-base step at 8 × 128. The second cast goes through
 * uint8 because ONNX Runtime merges identical nodes (common-subexpression elimination) and would
 * fold a plain second Cast(mask → float) back into the first; it then fuses the two casts into one,
 * so the backward pays one cast, as cheap as the Mul it feeds. Call after the backward is built;
 * `forward` holds the graph's nodes from before it (every other reader of a cast is the backward's).
 */
export function recastMasksForBackward(model: Model, masks: ReadonlyMap<string, number>, forward: ReadonlySet<Node>): void {
  const g = model.graph;
  for (const mask of masks.keys()) {
    for (const cast of g.consumers(mask).filter((c) => c.opType === 'Cast')) {
      const backward = g.consumers(cast.outputs[0]!).filter((c) => !forward.has(c));
      if (backward.length === 0) continue;
      const bytes = g.addNode({ opType: 'Cast', name: `${cast.name}/backward/uint8`, inputs: [mask], attrs: { to: A.int(DataType.UINT8) } }).outputs[0]!;
      const again = g.addNode({ opType: 'Cast', name: `${cast.name}/backward`, inputs: [bytes], attrs: { to: A.int(DataType.FLOAT) } }).outputs[0]!;
      for (const c of backward) c.inputs = c.inputs.map((i) => (i === cast.outputs[0] ? again : i));
    }
  }
  g.topologicalSort();
}

/** The shortest decimal that reads back as the same float32 (0.1, not 0.10000000149011612). */
function shortestFloat32(x: number): number {
  for (let digits = 1; digits < 17; digits++) {
    const d = Number(x.toPrecision(digits));
    if (Math.fround(d) === Math.fround(x)) return d;
  }
  return x;
}
