/**
 * MatMuls reading a transposed operand in place (src/artifacts/native/transposed-matmuls.ts): the
 * rewritten graph gives what the Transpose + MatMul gave, on onnxruntime-node and onnxruntime-web,
 * and only last-two-axes swaps of computed values with operands of rank ≥ 2 are rewritten.
 */
import { describe, expect, it } from 'vitest';
import * as ort from 'onnxruntime-node';
import { fuseTransposedOperands } from '../../src/artifacts/native/transposed-matmuls.js';
import { loadRuntime } from '../../src/predict/runtime.js';
import { DataType } from '../../src/onnx/dtype.js';
import { A, Graph, type Model } from '../../src/onnx/graph.js';
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

describe('MatMuls that read a transposed operand in place', () => {
  it('transA, transB and both give what Transpose + MatMul gave, and the Transposes go', async () => {
    for (const [ta, tb] of [[true, false], [false, true], [true, true]] as const) {
      const dims = { a: ta ? [2, 4, 3] : [2, 3, 4], b: tb ? [2, 5, 4] : [2, 4, 5] };
      const feeds = { a: values(24, 1), b: values(40, 2) };
      const before = await run(product(ta, tb), feeds, dims);
      const model = product(ta, tb);
      expect(fuseTransposedOperands(model)).toBe(1);
      model.graph.removeDeadNodes();
      expect(model.graph.nodes.map((n) => `${n.domain}:${n.opType}`)).toEqual(['com.microsoft:FusedMatMul']);
      const node = model.graph.nodes[0]!;
      expect(node.inputs).toEqual(['a', 'b']);
      expect([node.attrs.transA?.value, node.attrs.transB?.value]).toEqual([ta ? 1 : 0, tb ? 1 : 0]);
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
