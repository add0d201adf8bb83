import { ModtuneError } from '../errors.js';
import { DataType } from '../onnx/dtype.js';
import { A, Attr, Graph, Model, Node, isOnnxOp } from '../onnx/graph.js';
import { scalarF32 } from '../onnx/tensor.js';
import { constantScalar } from './patterns.js';

/**
 * Stock ONNX Runtime builds (onnxruntime-node, the CPU/CUDA wheels) remove every Dropout whose mask
 * output nothing reads, whatever its `training_mode` — only ORT's training builds keep them. A
 * training-mode Dropout run there must therefore either have its mask read (a gradient rule that
 * reuses it does) or be written with ops the optimizer leaves alone. This pass rewrites the latter
 * kind into standard ops with the same meaning:
 *
 *   u = RandomUniformLike(x)            (seed attribute carried over, as a float)
 *   keep = Less(ratio, u)               (true with probability 1 - ratio; the Dropout mask)
 *   y = Where(keep, x · 1/(1 - ratio), 0)
 *
 * `onlyUnusedMask` (default true) rewrites just the Dropouts ORT would remove; false rewrites all
 * training-mode ones (their mask output, if read, becomes `keep`). Dropouts that are the identity
 * (training_mode absent/false, ratio 0) are left as they are. Returns how many were rewritten.
 */
export function lowerDropouts(model: Model, opts: { onlyUnusedMask?: boolean } = {}): number {
  const g = model.graph;
  const onlyUnused = opts.onlyUnusedMask ?? true;
  let count = 0;
  const orphanCandidates = new Set<string>();
  for (const n of [...g.nodes]) {
    if (!isOnnxOp(n, 'Dropout')) continue;
    const [x, ratioName, modeName] = n.inputs;
    const [y, mask] = n.outputs;
    if (!x || !y || !modeName) continue; // pre-12 form or inference-only: the identity
    const mode = constantScalar(g, modeName);
    if (mode === undefined) throw new ModtuneError(`node '${n.name}' (Dropout): training_mode must be a constant to lower the node`);
    if (mode === 0) continue;
    const ratio = ratioName ? constantScalar(g, ratioName) : 0.5;
    if (ratio === undefined) throw new ModtuneError(`node '${n.name}' (Dropout): ratio must be a constant to lower the node`);
    if (!(ratio >= 0 && ratio < 1)) throw new ModtuneError(`node '${n.name}' (Dropout): ratio ${ratio} is outside [0, 1)`);
    if (ratio === 0) continue;
    const maskUsed = !!mask && (g.consumers(mask).length > 0 || g.isGraphOutput(mask));
    if (onlyUnused && maskUsed) continue;
    replaceWithRandomOps(model, n, x, y, maskUsed ? mask : undefined, ratio);
    for (const c of [ratioName, modeName]) if (c && g.initializers.has(c)) orphanCandidates.add(c);
    count++;
  }
  if (count) {
    // The Dropouts' ratio/training_mode constants may now be unread.
    deleteUnreadInitializers(g, orphanCandidates);
    g.topologicalSort();
  }
  return count;
}

/** Delete the initializers among `names` that nothing reads any more (a rewritten Dropout's constants). */
export function deleteUnreadInitializers(g: Graph, names: Iterable<string>): void {
  for (const name of names) {
    if (g.initializers.has(name) && g.consumers(name).length === 0 && !g.isGraphOutput(name) && !g.isGraphInput(name)) g.initializers.delete(name);
  }
}

function replaceWithRandomOps(model: Model, n: Node, x: string, y: string, mask: string | undefined, ratio: number): void {
  const g = model.graph;
  const seed = n.attrs.seed;
  g.removeNodes([n]);
  const uniformAttrs: Record<string, Attr> = seed && seed.type === 'int' ? { seed: A.float(seed.value) } : {};
  const u = g.addNode({ opType: 'RandomUniformLike', name: `${n.name}/RandomUniformLike`, inputs: [x], attrs: uniformAttrs }).outputs[0]!;
  const ratioInit = g.addInitializer(scalarF32(`${n.name}/ratio`, ratio));
  const keep = g.addNode({ opType: 'Less', name: `${n.name}/Less`, inputs: [ratioInit, u], outputs: mask ? [mask] : 1 }).outputs[0]!;
  const scaleInit = g.addInitializer(scalarF32(`${n.name}/scale`, 1 / (1 - ratio)));
  const scaled = g.addNode({ opType: 'Mul', name: `${n.name}/Mul`, inputs: [x, scaleInit] }).outputs[0]!;
  const zero = g.addInitializer(scalarF32(`${n.name}/zero`, 0));
  g.addNode({ opType: 'Where', name: `${n.name}/Where`, inputs: [keep, scaled, zero], outputs: [y] });
  if (mask) g.valueInfo.set(mask, { name: mask, elemType: DataType.BOOL, shape: g.valueInfo.get(mask)?.shape });
}
