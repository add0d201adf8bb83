import { describe, expect, it } from 'vitest';
import { buildBackward } from '../../src/autodiff/backward.js';
import { DataType } from '../../src/onnx/dtype.js';
import { Graph } from '../../src/onnx/graph.js';
import { tensorNumbers } from '../../src/onnx/tensor.js';
import { ortTensor, session } from './harness.js';
import { expectGradients, int, op } from './util.js';

/** x[2,4] → MatMul W1[4,3] → Relu → MatMul W2[3,2] → ReduceSum = loss (all float32 initializers). */
function mlp(): { g: Graph; loss: string } {
  const g = new Graph();
  g.inputs.push({ name: 'x', elemType: DataType.FLOAT, shape: ['batch', 4] });
  const init = (name: string, dims: number[]) =>
    g.addInitializer({ name, dataType: DataType.FLOAT, dims, raw: new Uint8Array(new Float32Array(dims[0]! * dims[1]!).map((_, i) => Math.sin(i + dims[0]!)).buffer) });
  init('W1', [4, 3]);
  init('W2', [3, 2]);
  const h = op(g, 'Relu', [op(g, 'MatMul', ['x', 'W1'])]);
  const loss = op(g, 'ReduceSum', [op(g, 'MatMul', [h, 'W2'])], { keepdims: int(0) });
  g.outputs.push({ name: loss, elemType: DataType.FLOAT, shape: [] });
  return { g, loss };
}

const count = (nodes: { opType: string }[], opType: string) => nodes.filter((n) => n.opType === opType).length;

describe('buildBackward', () => {
  it('sums the contributions of a value read by several nodes', async () => {
    await expectGradients({
      inputs: [{ name: 'x', shape: [2, 3] }],
      build: (g) => op(g, 'Add', [op(g, 'Mul', ['x', 'x']), op(g, 'Tanh', ['x'])]),
    });
  });

  it('emits backward work only on paths from the loss to the requested parameters', () => {
    const top = mlp();
    const onlyW2 = buildBackward(top.g, { loss: top.loss, wrt: ['W2'] });
    // dW2 = hᵀ @ dY: one MatMul, nothing below (no Relu mask, no dW1, no dx).
    expect(count(onlyW2.nodes, 'MatMul')).toBe(1);
    expect(count(onlyW2.nodes, 'Where')).toBe(0);

    const bottom = mlp();
    const onlyW1 = buildBackward(bottom.g, { loss: bottom.loss, wrt: ['W1'] });
    // dh = dY @ W2ᵀ and dW1 = xᵀ @ dpre; W2 is frozen (no dW2) and x needs no gradient (no dx).
    expect(count(onlyW1.nodes, 'MatMul')).toBe(2);
    expect(count(onlyW1.nodes, 'Where')).toBe(1);
    expect([...onlyW1.gradients.keys()]).toEqual(['W1']);
  });

  it('names gradients <param>_grad and the seed <loss>_grad (or seedName), and returns the appended nodes', () => {
    const a = mlp();
    const before = a.g.nodes.length;
    const r = buildBackward(a.g, { loss: a.loss, wrt: ['W1', 'W2'] });
    expect(r.gradients.get('W1')).toBe('W1_grad');
    expect(r.gradients.get('W2')).toBe('W2_grad');
    expect(tensorNumbers(a.g.initializers.get(`${a.loss}_grad`)!)).toEqual([1]);
    expect(a.g.nodes.slice(before)).toEqual(r.nodes);
    const producers = new Set(r.nodes.flatMap((n) => n.outputs));
    expect(producers.has('W1_grad') && producers.has('W2_grad')).toBe(true);

    const b = mlp();
    buildBackward(b.g, { loss: b.loss, wrt: ['W1'], seedName: 'dloss' });
    expect(b.g.initializers.has('dloss')).toBe(true);
  });

  it('gives distinct, correct gradients to parameters that share one backward value', async () => {
    const g = new Graph();
    g.inputs.push({ name: 'a', elemType: DataType.DOUBLE, shape: [3] }, { name: 'b', elemType: DataType.DOUBLE, shape: [3] });
    const loss = op(g, 'ReduceSum', [op(g, 'Add', ['a', 'b'])], { keepdims: int(0) });
    const { gradients } = buildBackward(g, { loss, wrt: ['a', 'b'] });
    expect(gradients.get('a')).not.toBe(gradients.get('b'));
    g.outputs = [...gradients.values()].map((name) => ({ name, elemType: DataType.DOUBLE }));
    const out = await (await session(g, 17)).run({ a: ortTensor('float64', [1, 2, 3], [3]), b: ortTensor('float64', [4, 5, 6], [3]) });
    for (const v of gradients.values()) expect(Array.from(out[v]!.data as Float64Array)).toEqual([1, 1, 1]);
  });

  it('gives zeros to a parameter the loss does not depend on', async () => {
    const g = new Graph();
    g.inputs.push({ name: 'a', elemType: DataType.DOUBLE, shape: [2] }, { name: 'unused', elemType: DataType.DOUBLE, shape: [2, 2] });
    const loss = op(g, 'ReduceSum', ['a'], { keepdims: int(0) });
    op(g, 'Neg', ['unused']);
    const { gradients } = buildBackward(g, { loss, wrt: ['a', 'unused'] });
    g.outputs = [{ name: gradients.get('unused')!, elemType: DataType.DOUBLE }];
    const out = await (await session(g, 17)).run({ a: ortTensor('float64', [1, 2], [2]), unused: ortTensor('float64', [1, 2, 3, 4], [2, 2]) });
    const z = out[gradients.get('unused')!]!;
    expect(z.dims).toEqual([2, 2]);
    expect(Array.from(z.data as Float64Array)).toEqual([0, 0, 0, 0]);
  });

  it('names the op, node and a blocked parameter when a rule is missing', () => {
    const g = new Graph();
    g.inputs.push({ name: 'x', elemType: DataType.FLOAT, shape: [2] });
    g.initializers.set('bert.encoder.layer.0.output.LayerNorm.weight', { name: 'bert.encoder.layer.0.output.LayerNorm.weight', dataType: DataType.FLOAT, dims: [2], raw: new Uint8Array(8) });
    const y = g.addNode({ opType: 'Cos', name: '/x/Cos_3', inputs: [op(g, 'Mul', ['x', 'bert.encoder.layer.0.output.LayerNorm.weight'])] }).outputs[0]!;
    const loss = op(g, 'ReduceSum', [y], { keepdims: int(0) });
    expect(() => buildBackward(g, { loss, wrt: ['bert.encoder.layer.0.output.LayerNorm.weight'] })).toThrow(
      "no gradient rule for op 'Cos' (node '/x/Cos_3') on the path to parameter 'bert.encoder.layer.0.output.LayerNorm.weight'",
    );
  });

  it('accepts ops without rules off the gradient path, and custom-domain ops are named with their domain', () => {
    const g = new Graph();
    g.inputs.push({ name: 'x', elemType: DataType.FLOAT, shape: [2] }, { name: 'w', elemType: DataType.FLOAT, shape: [2] });
    const frozen = g.addNode({ opType: 'Cos', inputs: ['x'] }).outputs[0]!; // only x, which is frozen
    const loss = op(g, 'ReduceSum', [op(g, 'Mul', [frozen, 'w'])], { keepdims: int(0) });
    expect(buildBackward(g.clone(), { loss, wrt: ['w'] }).gradients.get('w')).toBe('w_grad');

    const h = new Graph();
    h.inputs.push({ name: 'w', elemType: DataType.FLOAT, shape: [2] });
    const fused = h.addNode({ opType: 'BiasGelu', domain: 'com.microsoft', name: 'fused', inputs: ['w', 'w'] }).outputs[0]!;
    const l2 = op(h, 'ReduceSum', [fused], { keepdims: int(0) });
    expect(() => buildBackward(h, { loss: l2, wrt: ['w'], shapes: new Map([[fused, { name: fused, elemType: DataType.FLOAT, shape: [2] }]]) })).toThrow(
      "no gradient rule for op 'com.microsoft.BiasGelu' (node 'fused') on the path to parameter 'w'",
    );
  });

  it('rejects a non-scalar loss, unknown parameters and integer parameters', () => {
    const g = new Graph();
    g.inputs.push({ name: 'x', elemType: DataType.FLOAT, shape: [2, 3] }, { name: 'ids', elemType: DataType.INT64, shape: [2] });
    const y = op(g, 'Tanh', ['x']);
    expect(() => buildBackward(g.clone(), { loss: y, wrt: ['x'] })).toThrow(/loss '.*' has shape \[2, 3\], expected a scalar/);
    const loss = op(g, 'ReduceSum', [y], { keepdims: int(0) });
    expect(() => buildBackward(g.clone(), { loss, wrt: ['nope'] })).toThrow("autodiff: parameter 'nope' is not an initializer or input of graph 'graph'");
    expect(() => buildBackward(g.clone(), { loss, wrt: ['ids'] })).toThrow(/parameter 'ids' has type INT64/);
    expect(() => buildBackward(g.clone(), { loss: 'missing', wrt: ['x'] })).toThrow(/loss 'missing' is not a value/);
  });

  it('reuses one Shape/transpose of a forward value across rules', () => {
    // Three MatMuls read the same activations (as Q/K/V do): their weight gradients share one
    // flattened-and-transposed copy of the activations.
    const g = new Graph();
    g.inputs.push({ name: 'x', elemType: DataType.FLOAT, shape: ['batch', 'seq', 4] });
    const ws = ['wq', 'wk', 'wv'];
    for (const w of ws) g.addInitializer({ name: w, dataType: DataType.FLOAT, dims: [4, 4], raw: new Uint8Array(64) });
    const sum = op(g, 'Sum', ws.map((w) => op(g, 'MatMul', ['x', w])));
    const loss = op(g, 'ReduceSum', [sum], { keepdims: int(0) });
    const { nodes } = buildBackward(g, { loss, wrt: ws });
    expect(count(nodes, 'MatMul')).toBe(3);
    expect(count(nodes, 'Transpose')).toBe(1);
  });

  it('handles deep graphs (no recursion limits): a 3000-layer chain', () => {
    const g = new Graph();
    g.inputs.push({ name: 'x', elemType: DataType.FLOAT, shape: ['batch', 8] });
    let h = 'x';
    const params: string[] = [];
    for (let i = 0; i < 3000; i++) {
      const w = g.addInitializer({ name: `w${i}`, dataType: DataType.FLOAT, dims: [8, 8], raw: new Uint8Array(256) });
      params.push(w);
      h = op(g, 'Tanh', [op(g, 'MatMul', [h, w])]);
    }
    const loss = op(g, 'ReduceSum', [h], { keepdims: int(0) });
    const { gradients, nodes } = buildBackward(g, { loss, wrt: params.slice(-2) });
    expect(gradients.size).toBe(2);
    // Only the top two layers are differentiated.
    expect(count(nodes, 'MatMul')).toBe(3);
  });
});

describe('erf-GELU pattern', () => {
  it('differentiates the whole pattern from its input, so no backward node reads its intermediates', async () => {
    const { buildBert, presetConfig } = await import('../../src/bert/index.js');
    const { buildBackward } = await import('../../src/autodiff/index.js');
    const cfg = { ...presetConfig('bert-tiny'), vocabSize: 50, numHiddenLayers: 1, hiddenSize: 16, intermediateSize: 32, numAttentionHeads: 2, maxPositionEmbeddings: 16 };
    const m = buildBert({ config: cfg, seed: 3, numLabels: 2 });
    const g = m.graph;
    const erf = g.nodes.find((n) => n.opType === 'Erf')!;
    const interior = new Set<string>([erf.inputs[0]!, erf.outputs[0]!]);
    const add = g.consumers(erf.outputs[0]!)[0]!;
    interior.add(add.outputs[0]!);
    const mul = g.consumers(add.outputs[0]!)[0]!;
    interior.add(mul.outputs[0]!);
    const forward = new Set(g.nodes);
    // Loss: sum of logits, enough to pull a gradient through the FFN.
    const loss = g.addNode({ opType: 'ReduceSum', inputs: [g.outputs[0]!.name], attrs: { keepdims: { type: 'int', value: 0 } } }).outputs[0]!;
    const { gradients, nodes } = buildBackward(g, { loss, wrt: ['bert.embeddings.LayerNorm.weight'] });
    expect(gradients.has('bert.embeddings.LayerNorm.weight')).toBe(true);
    const readers = nodes.filter((n) => !forward.has(n) && n.inputs.some((i) => interior.has(i)));
    expect(readers.map((n) => n.name)).toEqual([]);
  });
});
