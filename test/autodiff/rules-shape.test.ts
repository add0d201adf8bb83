import { describe, expect, it } from 'vitest';
import { ALL_MODES, expectGradients, int, int64Const, int64Init, ints, op } from './util.js';
import { gradCheck } from './harness.js';

const batch = { batch: 2 };

describe('data movement rules (finite differences, float64)', () => {
  it('Reshape to a run-time shape and Flatten', async () => {
    await expectGradients({
      inputs: [{ name: 'x', shape: [2, 3, 4], declared: ['batch', 3, 4] }],
      build: (g) => [
        op(g, 'Reshape', ['x', int64Init(g, 's', [0, -1, 2])]),
        op(g, 'Flatten', ['x'], { axis: int(2) }),
      ],
      symbols: batch,
    }, ALL_MODES);
  });

  it('Transpose with a perm and with the default reversal', async () => {
    await expectGradients({
      inputs: [{ name: 'x', shape: [2, 3, 4] }],
      build: (g) => [op(g, 'Transpose', ['x'], { perm: ints([1, 2, 0]) }), op(g, 'Transpose', ['x'])],
    });
  });

  it('Squeeze/Unsqueeze with axes inputs (opset 13+) and without axes', async () => {
    await expectGradients({
      inputs: [{ name: 'x', shape: [2, 1, 3] }],
      build: (g) => [
        op(g, 'Squeeze', ['x', int64Const(g, [1])]),
        op(g, 'Squeeze', ['x']),
        op(g, 'Unsqueeze', ['x', int64Init(g, 'ax', [0, -1])]),
      ],
    }, ['static', 'unknown']);
  });

  it('Squeeze/Unsqueeze with the axes attribute (opset 11 graph)', async () => {
    await expectGradients({
      opset: 11,
      inputs: [{ name: 'x', shape: [2, 1, 3] }],
      build: (g) => [op(g, 'Squeeze', ['x'], { axes: ints([1]) }), op(g, 'Unsqueeze', ['x'], { axes: ints([3]) })],
    });
  });

  it('Slice: static bounds (Pad), negative and clamped bounds, steps, run-time bounds', async () => {
    await expectGradients({
      inputs: [
        { name: 'x', shape: [3, 5], declared: ['batch', 5] },
        { name: 'start', shape: [1], type: 'int64', data: [1], trainable: false },
      ],
      build: (g) => [
        op(g, 'Slice', ['x', int64Init(g, 's1', [1]), int64Init(g, 'e1', [4]), int64Init(g, 'a1', [1])]),
        op(g, 'Slice', ['x', int64Init(g, 's2', [-2, 0]), int64Init(g, 'e2', [1000, -1])]),
        op(g, 'Slice', ['x', int64Init(g, 's3', [4]), int64Init(g, 'e3', [-10]), int64Init(g, 'a3', [1]), int64Init(g, 'st3', [-2])]),
        op(g, 'Slice', ['x', 'start', int64Init(g, 'e4', [3]), int64Init(g, 'a4', [0])]),
      ],
      symbols: { batch: 3 },
    }, ALL_MODES);
  });

  it('Gather on axis 0 (embedding) accumulates repeated and negative ids', async () => {
    const [r] = await expectGradients({
      inputs: [
        { name: 'table', shape: [5, 3] },
        { name: 'ids', shape: [2, 3], type: 'int64', data: [1, 4, 1, 0, 1, -1], declared: ['batch', 3] },
      ],
      build: (g) => op(g, 'Gather', ['table', 'ids']),
      symbols: batch,
    }, ALL_MODES);
    expect(r!.backwardOps).toContain('ScatterND');
    // Row 1 was picked three times, row 4 twice (4 and -1), rows 2 never: its gradient is exactly 0.
    const grad = r!.gradients.get('table')!;
    expect(Array.from(grad.slice(6, 9))).toEqual([0, 0, 0]);
  });

  it('Gather with int32 indices, constant and fed', async () => {
    await expectGradients({
      inputs: [{ name: 'table', shape: [4, 2] }, { name: 'ids', shape: [3], type: 'int32', data: [3, -4, 3] }],
      build: (g) => [
        op(g, 'Gather', ['table', 'ids']),
        op(g, 'Gather', ['table', g.addInitializer({ name: 'i32', dataType: 6, dims: [2], raw: new Uint8Array(new Int32Array([1, 1]).buffer) })]),
      ],
    });
  });

  it('Gather on axis 1 with a scalar index (the pooler\'s [CLS] pick) and with 2-D indices', async () => {
    await expectGradients({
      inputs: [{ name: 'h', shape: [2, 3, 4], declared: ['batch', 3, 4] }],
      build: (g) => [
        op(g, 'Gather', ['h', int64Const(g, [0], [])], { axis: int(1) }),
        op(g, 'Gather', ['h', int64Init(g, 'idx', [2, 0, 2, -1], [2, 2])], { axis: int(-1) }),
      ],
      symbols: batch,
    }, ['static', 'symbolic', 'infer']);
  });

  it('Concat (static and run-time split sizes), one input frozen', async () => {
    await expectGradients({
      inputs: [
        { name: 'a', shape: [2, 1], declared: ['batch', 1] },
        { name: 'b', shape: [2, 3], declared: ['batch', 'n'], trainable: false },
        { name: 'c', shape: [2, 2], declared: ['batch', 'm'] },
      ],
      build: (g) => op(g, 'Concat', ['a', 'b', 'c'], { axis: int(-1) }),
      symbols: batch,
    }, ['static', 'unknown', 'infer']);
  });

  it('Split with an unused output (zeros fill its place)', async () => {
    await expectGradients({
      inputs: [{ name: 'x', shape: [2, 6] }],
      build: (g) => {
        const [a, , c] = g.addNode({ opType: 'Split', inputs: ['x', int64Init(g, 'sp', [1, 2, 3])], outputs: 3, attrs: { axis: int(1) } }).outputs;
        return [a!, c!];
      },
    }, ['static', 'unknown']);
  });

  it('Expand from a broadcastable shape', async () => {
    await expectGradients({
      inputs: [{ name: 'x', shape: [3, 1] }],
      build: (g) => op(g, 'Expand', ['x', int64Init(g, 'to', [2, 3, 4])]),
    }, ['static', 'unknown']);
  });

  it('Cast between float types; a cast to int64 ends the path', async () => {
    await expectGradients({
      type: 'float32',
      inputs: [{ name: 'x', shape: [2, 3], data: [0.3, 1.7, -2.2, 0.6, -0.4, 2.6] }],
      build: (g) => {
        const dbl = op(g, 'Cast', ['x'], { to: int(11) });
        const back = op(g, 'Cast', [op(g, 'Tanh', [dbl])], { to: int(1) });
        const rounded = op(g, 'Cast', [op(g, 'Cast', ['x'], { to: int(7) })], { to: int(1) });
        return op(g, 'Add', [back, rounded]);
      },
    });
  });

  it('Where (boolean condition broadcast), Identity', async () => {
    await expectGradients({
      inputs: [
        { name: 'cond', shape: [3], type: 'bool', data: [1, 0, 1] },
        { name: 'a', shape: [2, 3] },
        { name: 'b', shape: [1] },
      ],
      build: (g) => op(g, 'Identity', [op(g, 'Where', ['cond', 'a', 'b'])]),
    }, ['static', 'unknown']);
  });

  it('Dropout without training mode, with a constant false flag and with a run-time flag', async () => {
    await expectGradients({
      inputs: [
        { name: 'x', shape: [2, 3] },
        { name: 'training', shape: [], type: 'bool', data: [0] },
      ],
      build: (g) => {
        const ratio = g.addInitializer({ name: 'ratio', dataType: 1, dims: [], raw: new Uint8Array(new Float32Array([0.3]).buffer) });
        const off = g.addInitializer({ name: 'off', dataType: 9, dims: [], raw: new Uint8Array([0]) });
        return [op(g, 'Dropout', ['x']), op(g, 'Dropout', ['x', ratio, off]), op(g, 'Dropout', ['x', ratio, 'training'])];
      },
    });
  });

  it('Dropout in training mode: dx = dy · mask / (1 - ratio) with the forward mask', async () => {
    // Dropout draws a new mask every run, so finite differences do not apply: check the identity
    // y = x · mask · s and dx = W · mask · s within one run instead (loss = Σ y · W).
    const { Graph } = await import('../../src/onnx/graph.js');
    const { buildBackward } = await import('../../src/autodiff/backward.js');
    const { session, ortTensor, random } = await import('./harness.js');
    const g = new Graph();
    g.inputs.push({ name: 'x', elemType: 11, shape: [4, 50] }, { name: 'w', elemType: 11, shape: [4, 50] });
    const ratio = g.addInitializer({ name: 'ratio', dataType: 11, dims: [], raw: new Uint8Array(new Float64Array([0.25]).buffer) });
    const on = g.addInitializer({ name: 'on', dataType: 9, dims: [], raw: new Uint8Array([1]) });
    const y = op(g, 'Dropout', ['x', ratio, on]);
    const loss = op(g, 'ReduceSum', [op(g, 'Mul', [y, 'w'])], { keepdims: int(0) });
    const { gradients } = buildBackward(g, { loss, wrt: ['x'] });
    const mask = g.nodes.find((n) => n.opType === 'Dropout')!.outputs[1]!;
    g.outputs.push({ name: y, elemType: 11 }, { name: mask, elemType: 9 }, { name: gradients.get('x')!, elemType: 11 });
    const rng = random(9);
    const xs = Array.from({ length: 200 }, () => 1 + rng.next());
    const ws = Array.from({ length: 200 }, () => rng.normal());
    const out = await (await session(g, 17)).run({ x: ortTensor('float64', xs, [4, 50]), w: ortTensor('float64', ws, [4, 50]) });
    const m = out[mask]!.data as Uint8Array;
    const dx = out[gradients.get('x')!]!.data as Float64Array;
    const yv = out[y]!.data as Float64Array;
    let kept = 0;
    for (let i = 0; i < 200; i++) {
      kept += m[i]!;
      expect(yv[i]).toBeCloseTo(m[i] ? xs[i]! / 0.75 : 0, 12);
      expect(dx[i]).toBeCloseTo(m[i] ? ws[i]! / 0.75 : 0, 12);
    }
    expect(kept).toBeGreaterThan(100);
    expect(kept).toBeLessThan(200);
  });
});

describe('non-differentiable paths', () => {
  it('shape computations, comparisons and integer casts end the backward path without error', async () => {
    const r = await gradCheck({
      inputs: [{ name: 'x', shape: [2, 3], data: [0.5, -1, 2, -0.3, 0.8, -2] }],
      build: (g) => {
        const shape = op(g, 'Shape', ['x']);
        const reshaped = op(g, 'Reshape', ['x', shape]);
        const positive = op(g, 'Cast', [op(g, 'Greater', ['x', g.addInitializer({ name: 'z', dataType: 11, dims: [], raw: new Uint8Array(8) })])], { to: int(11) });
        const zeros = op(g, 'ConstantOfShape', [shape], { value: { type: 'tensor', value: { name: '', dataType: 11, dims: [1], raw: new Uint8Array(8) } } });
        return op(g, 'Add', [op(g, 'Mul', [reshaped, positive]), zeros]);
      },
    });
    expect(r.failures).toEqual([]);
    expect(r.backwardOps).not.toContain('Greater');
  });
});
