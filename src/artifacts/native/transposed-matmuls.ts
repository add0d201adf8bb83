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
 * A weight stored the way torch's Linear stores it, [out, in], is read as Transpose(W), so its
 * gradient came out as Transpose(Xᵀ · dY): a weight-sized copy after every weight-gradient product
 * (42–50 ms of kernel time in a bert-base `full` step at 8 × 128). Such a product is written as
 * dYᵀ · X, which reads both operands in place and gives the gradient in W's own layout.
 *
 * FusedMatMul is a contrib op of stock ONNX Runtime's CPU and CUDA providers and of onnxruntime-web's
 * WebAssembly build; ONNX Runtime itself rewrites MatMuls into it. A transposed initializer is left
 * alone: ONNX Runtime folds that constant once, at load.
 */
import { A, attrInts, isOnnxOp, type Graph, type Model, type ValueInfo } from '../../onnx/graph.js';
import { inferShapes } from '../../onnx/shapes.js';

const CONTRIB = 'com.microsoft';

/**
 * Rewrite in place; returns how many MatMuls it rewrote. The Transposes nothing
 * reads any more stay for the caller's dead-node sweep (the gradients are not graph outputs yet).
 */
export function fuseTransposedOperands(model: Model, shapes: Map<string, ValueInfo> = inferShapes(model)): number {
  const g = model.graph;
  const rank = (v: string) => shapes.get(v)?.shape?.length;
  let fused = transposeProducts(g, rank);
  for (const n of [...g.nodes]) {
    if (!isOnnxOp(n, 'MatMul')) continue;
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

/**
 * Transpose(X · Y) of 2-D X and Y, where nothing else reads the product, as Yᵀ · Xᵀ in one
 * FusedMatMul: an operand that is itself a transposed computed value is read untransposed, any
 * other with the transpose flag. Returns how many products were rewritten.
 */
function transposeProducts(g: Graph, rank: (v: string) => number | undefined): number {
  let rewritten = 0;
  for (const t of [...g.nodes]) {
    if (!isOnnxOp(t, 'Transpose')) continue;
    const perm = attrInts(t, 'perm');
    if (perm && !(perm.length === 2 && perm[0] === 1 && perm[1] === 0)) continue;
    const product = t.inputs[0]!;
    const mm = g.producer(product);
    if (!isOnnxOp(mm, 'MatMul')) continue;
    const [x, y] = [mm.inputs[0]!, mm.inputs[1]!];
    if (rank(x) !== 2 || rank(y) !== 2) continue;
    if (g.consumers(product).length !== 1 || g.isGraphOutput(product)) continue;
    const [xs, ys] = [swappedLastTwo(g, x), swappedLastTwo(g, y)];
    g.removeNodes([mm, t]);
    g.addNode({
      opType: 'FusedMatMul', domain: CONTRIB, name: mm.name, inputs: [ys ?? y, xs ?? x], outputs: [...t.outputs],
      attrs: { alpha: A.float(1), transA: A.int(ys ? 0 : 1), transB: A.int(xs ? 0 : 1) },
    });
    rewritten++;
  }
  return rewritten;
}

/** X when `v` = Transpose(X) swaps exactly the last two axes of a computed (non-constant) X. */
function swappedLastTwo(g: Graph, v: string): string | undefined {
  const t = g.producer(v);
  if (!isOnnxOp(t, 'Transpose')) return undefined;
  const x = t.inputs[0]!;
  if (g.initializers.has(x)) return undefined;
  const perm = attrInts(t, 'perm');
  if (!perm || perm.length < 2) return undefined;
  const r = perm.length;
  return perm.every((p, i) => p === (i === r - 2 ? r - 1 : i === r - 1 ? r - 2 : i)) ? x : undefined;
}
