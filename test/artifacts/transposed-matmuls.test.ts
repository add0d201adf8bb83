/**
 * MatMuls reading a transposed operand in place (src/artifacts/native/transposed-matmuls.ts): the
 * rewritten graph gives what the Transpose + MatMul gave, on onnxruntime-node and onnxruntime-web,
 * and only last-two-axes swaps of computed values with operands of rank ≥ 2 are rewritten; a
 * transposed 2-D product nothing else reads becomes the product of the transposed operands.
 */
import { describe, expect, it } from 'vitest';
import * as ort from 'onnxruntime-node';
import { fuseTransposedOperands } from '../../src/artifacts/native/transposed-matmuls.js';
import { loadRuntime } from '../../src/predict/runtime.js';
import { DataType } from '../../src/onnx/dtype.js';
import { A, Graph, type Model, type Node } from '../../src/onnx/graph.js';
import { encodeModel, newModel } from '../../src/onnx/io.js';
import { makeTensor } from '../../src/onnx/tensor.js';

const f32 = (name: string, shape: number[]) => ({ name, elemType: DataType.FLOAT, shape });

/** y = Transpose(a)? @ Transpose(b)?, a: [2, 3, 4] (or [2, 4, 3] transposed), b: [2, 4, 5] (or [2, 5, 4]). */
function product(transA: boolean, transB: boolean): Model {
  const g = new Graph();
  g.inputs.push(f32('a', transA ? [2, 4, 3] : [2, 3, 4]), f32('b', transB ? [2, 5, 4] : [2, 4, 5]));
  const a = transA ? g.addNode({ opType: 'Transpose', name: '/ta', inputs: ['a'], attrs: { perm: A.ints([0, 2, 1]) } }).outputs[0]! : 'a';
  const b = transB ? g.addNode({ opType: 'Transpose', name: '/tb', inputs: ['b'], attrs: { perm: A.ints([0, 2, 1]) } }).outputs[0]! : 'b';
  g.addNode({ opType: 'MatMul', name: '/mm', inputs: [a, b], outputs: ['y'] });
  g.outputs.push(f32('y', [2, 3, 5]));
  return newModel(g, 17);
}

const values = (n: number, seed: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(seed + i * 0.7) * 2);

async function run(model: Model, feeds: Record<string, Float32Array>, dims: Record<string, number[]>): Promise<Float32Array> {
  const s = await ort.InferenceSession.create(encodeModel(model));
  const out = await s.run(Object.fromEntries(Object.entries(feeds).map(([k, v]) => [k, new ort.Tensor('float32', v, dims[k])])));
  await s.release();
  return out.y!.data as Float32Array;
}

/** Rewrites `model`, which must become a single FusedMatMul, and returns it with its [transA, transB]. */
function fuseToOneNode(model: Model): { node: Node; trans: unknown[] } {
  expect(fuseTransposedOperands(model)).toBe(1);
  model.graph.removeDeadNodes();
  expect(model.graph.nodes.map((n) => `${n.domain}:${n.opType}`)).toEqual(['com.microsoft:FusedMatMul']);
  const node = model.graph.nodes[0]!;
  return { node, trans: [node.attrs.transA?.value, node.attrs.transB?.value] };
}

describe('MatMuls that read a transposed operand in place', () => {
  it('transA, transB and both give what Transpose + MatMul gave, and the Transposes go', async () => {
    for (const [ta, tb] of [[true, false], [false, true], [true, true]] as const) {
      const dims = { a: ta ? [2, 4, 3] : [2, 3, 4], b: tb ? [2, 5, 4] : [2, 4, 5] };
      const feeds = { a: values(24, 1), b: values(40, 2) };
      const before = await run(product(ta, tb), feeds, dims);
      const model = product(ta, tb);
      const { node, trans } = fuseToOneNode(model);
      expect(node.inputs).toEqual(['a', 'b']);
      expect(trans).toEqual([ta ? 1 : 0, tb ? 1 : 0]);
      expect(model.opsetImports).toContainEqual({ domain: 'com.microsoft', version: 1 });
      const after = await run(model, feeds, dims);
      for (let i = 0; i < before.length; i++) expect(after[i]).toBeCloseTo(before[i]!, 5);
      // Plain ONNX semantics, in float64: y[n, i, j] = Σ_k A[n, i, k] · B[n, k, j].
      const A_ = (n: number, i: number, k: number) => (ta ? feeds.a[n * 12 + k * 3 + i]! : feeds.a[n * 12 + i * 4 + k]!);
      const B_ = (n: number, k: number, j: number) => (tb ? feeds.b[n * 20 + j * 4 + k]! : feeds.b[n * 20 + k * 5 + j]!);
      for (let n = 0; n < 2; n++) for (let i = 0; i < 3; i++) for (let j = 0; j < 5; j++) {
        let sum = 0;
        for (let k = 0; k < 4; k++) sum += A_(n, i, k) * B_(n, k, j);
        expect(after[n * 15 + i * 5 + j]).toBeCloseTo(sum, 5);
      }
    }
  });

  it('a transposed product, (X · Y)ᵀ, becomes Yᵀ · Xᵀ read in place, as a weight gradient in [out, in] layout', async () => {
    // y = Transpose(MatMul(X, d)) with X = Transpose(a) (the weight-gradient form) or X = a itself.
    const transposedProduct = (xTransposed: boolean, extraReader: boolean): Model => {
      const g = new Graph();
      g.inputs.push(f32('a', xTransposed ? [6, 3] : [3, 6]), f32('d', [6, 4]));
      const x = xTransposed ? g.addNode({ opType: 'Transpose', name: '/ta', inputs: ['a'], attrs: { perm: A.ints([1, 0]) } }).outputs[0]! : 'a';
      g.addNode({ opType: 'MatMul', name: '/mm', inputs: [x, 'd'], outputs: ['p'] });
      g.addNode({ opType: 'Transpose', name: '/tp', inputs: ['p'], outputs: ['y'], attrs: { perm: A.ints([1, 0]) } });
      g.outputs.push(f32('y', [4, 3]));
      if (extraReader) g.outputs.push(f32('p', [3, 4]));
      return newModel(g, 17);
    };
    const feeds = { a: values(18, 4), d: values(24, 5) };
    for (const xTransposed of [true, false]) {
      const dims = { a: xTransposed ? [6, 3] : [3, 6], d: [6, 4] };
      const before = await run(transposedProduct(xTransposed, false), feeds, dims);
      const model = transposedProduct(xTransposed, false);
      const { node, trans } = fuseToOneNode(model);
      expect(node.inputs).toEqual(['d', 'a']);
      expect(node.outputs).toEqual(['y']);
      expect(trans).toEqual([1, xTransposed ? 0 : 1]);
      const after = await run(model, feeds, dims);
      // Float64: y[j, i] = Σ_k X[i, k] · d[k, j], X[i, k] = a[k, i] (transposed) or a[i, k].
      const X = (i: number, k: number) => (xTransposed ? feeds.a[k * 3 + i]! : feeds.a[i * 6 + k]!);
      for (let j = 0; j < 4; j++) for (let i = 0; i < 3; i++) {
        let sum = 0;
        for (let k = 0; k < 6; k++) sum += X(i, k) * feeds.d[k * 4 + j]!;
        expect(after[j * 3 + i]).toBeCloseTo(sum, 5);
        expect(after[j * 3 + i]).toBeCloseTo(before[j * 3 + i]!, 5);
      }
    }
    // A product that is also read as it is keeps its MatMul; only its transposed operand is fused.
    const shared = transposedProduct(true, true);
    expect(fuseTransposedOperands(shared)).toBe(1);
    shared.graph.removeDeadNodes();
    expect(shared.graph.nodes.map((n) => n.opType).sort()).toEqual(['FusedMatMul', 'Transpose']);
    expect(shared.graph.producer('p')?.inputs).toEqual(['a', 'd']);
  });

  it('runs on onnxruntime-web too', async () => {
    const model = product(false, true);
    fuseTransposedOperands(model);
    model.graph.removeDeadNodes();
    const web = await loadRuntime('web');
    const s = await web.createSession(encodeModel(model));
    const feeds = { a: values(24, 1), b: values(40, 2) };
    const out = await s.run({ a: web.float32(feeds.a, [2, 3, 4]), b: web.float32(feeds.b, [2, 5, 4]) });
    const expected = await run(product(false, true), feeds, { a: [2, 3, 4], b: [2, 5, 4] });
    const got = out.y!.data as Float32Array;
    for (let i = 0; i < expected.length; i++) expect(got[i]).toBeCloseTo(expected[i]!, 5);
    await s.release();
  });

  it('leaves other permutations, transposed constants and vector operands alone', () => {
    // A perm that is not a swap of the last two axes.
    const g1 = new Graph();
    g1.inputs.push(f32('a', [3, 2, 4]), f32('b', [2, 4, 5]));
    const t1 = g1.addNode({ opType: 'Transpose', inputs: ['a'], attrs: { perm: A.ints([1, 0, 2]) } }).outputs[0]!;
    g1.addNode({ opType: 'MatMul', inputs: [t1, 'b'], outputs: ['y'] });
    g1.outputs.push(f32('y', [2, 3, 5]));
    // A transposed initializer (a frozen weight: ONNX Runtime folds it at load).
    const g2 = new Graph();
    g2.inputs.push(f32('x', [2, 3, 4]));
    g2.initializers.set('w', makeTensor('w', DataType.FLOAT, [5, 4], values(20, 3)));
    const t2 = g2.addNode({ opType: 'Transpose', inputs: ['w'], attrs: { perm: A.ints([1, 0]) } }).outputs[0]!;
    g2.addNode({ opType: 'MatMul', inputs: ['x', t2], outputs: ['y'] });
    g2.outputs.push(f32('y', [2, 3, 5]));
    // A vector times a transposed matrix.
    const g3 = new Graph();
    g3.inputs.push(f32('v', [4]), f32('m', [5, 4]));
    const t3 = g3.addNode({ opType: 'Transpose', inputs: ['m'], attrs: { perm: A.ints([1, 0]) } }).outputs[0]!;
    g3.addNode({ opType: 'MatMul', inputs: ['v', t3], outputs: ['y'] });
    g3.outputs.push(f32('y', [5]));
    for (const g of [g1, g2, g3]) {
      const model = newModel(g, 17);
      expect(fuseTransposedOperands(model)).toBe(0);
      expect(model.graph.nodes.map((n) => n.opType)).toEqual(['Transpose', 'MatMul']);
    }
  });
});
