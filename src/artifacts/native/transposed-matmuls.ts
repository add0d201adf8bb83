/**
 * MatMuls of the native training models that read a transposed operand, rewritten as ONNX Runtime's
 * `com.microsoft.FusedMatMul` with `transA`/`transB`: the operand is read in place instead of copied.
 *
 * The autodiff writes dA = dY · Bᵀ and dB = Aᵀ · dY with standard Transpose nodes. ONNX Runtime
 * folds a Transpose into the MatMul that reads it, but only after its transpose optimizer has run,
 * and that merges a backward Transpose with the forward one that made its input: attention's Q, K
 * and V are Reshape → Transpose, so the backward's Kᵀ-of-Kᵀ becomes a new Transpose of the Reshape,
 * which no MatMul can absorb. Three copies the size of a layer's hidden states, per layer, written in
 * the forward pass and kept for the backward: 8 ms of a bert-mini `layernorm` step at 32 × 128, and
 * 110 MB at the peak of a bert-base step at 8 × 128. Rewritten before ONNX Runtime sees the graph,
 * the MatMul reads Kᵀ transposed and nothing is copied.
 *
 * FusedMatMul is a contrib op of stock ONNX Runtime's CPU and CUDA providers and of onnxruntime-web's
 * WebAssembly build; ONNX Runtime itself rewrites MatMuls into it. A transposed initializer is left
 * alone: ONNX Runtime folds that constant once, at load.
 */
import { A, attrInts, type Graph, type Model, type ValueInfo } from '../../onnx/graph.js';
import { inferShapes } from '../../onnx/shapes.js';

const CONTRIB = 'com.microsoft';

/**
 * Rewrite in place; returns how many MatMuls now read an operand transposed. The Transposes nothing
 * reads any more stay for the caller's dead-node sweep (the gradients are not graph outputs yet).
 */
export function fuseTransposedOperands(model: Model, shapes: Map<string, ValueInfo> = inferShapes(model)): number {
  const g = model.graph;
  const rank = (v: string) => shapes.get(v)?.shape?.length;
  let fused = 0;
  for (const n of [...g.nodes]) {
    if (n.opType !== 'MatMul' || (n.domain !== '' && n.domain !== 'ai.onnx')) continue;
    const inputs = [...n.inputs];
    const trans = [0, 0];
    for (const i of [0, 1]) {
      const source = swappedLastTwo(g, inputs[i]!);
      // Both operands at least 2-D: a vector operand has no last two axes to swap.
      const other = rank(inputs[1 - i]!);
      if (source === undefined || other === undefined || other < 2) continue;
      inputs[i] = source;
      trans[i] = 1;
    }
    if (!trans[0] && !trans[1]) continue;
    g.removeNodes([n]);
    g.addNode({
      opType: 'FusedMatMul', domain: CONTRIB, name: n.name, inputs, outputs: [...n.outputs],
      attrs: { alpha: A.float(1), transA: A.int(trans[0]!), transB: A.int(trans[1]!) },
    });
    fused++;
  }
  if (fused) {
    if (!model.opsetImports.some((o) => o.domain === CONTRIB)) model.opsetImports.push({ domain: CONTRIB, version: 1 });
    g.topologicalSort();
  }
  return fused;
}

/** X when `v` = Transpose(X) swaps exactly the last two axes of a computed (non-constant) X. */
function swappedLastTwo(g: Graph, v: string): string | undefined {
  const t = g.producer(v);
  if (!t || t.opType !== 'Transpose' || (t.domain !== '' && t.domain !== 'ai.onnx')) return undefined;
  const x = t.inputs[0]!;
  if (g.initializers.has(x)) return undefined;
  const perm = attrInts(t, 'perm');
  if (!perm || perm.length < 2) return undefined;
  const r = perm.length;
  return perm.every((p, i) => p === (i === r - 2 ? r - 1 : i === r - 1 ? r - 2 : i)) ? x : undefined;
}
