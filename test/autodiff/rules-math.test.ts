import { describe, expect, it } from 'vitest';
import { ALL_MODES, awayFromZero, expectGradients, float, floatInit, int, int64Init, ints, op, str } from './util.js';

const batch = { batch: 2 };

describe('elementwise rules (finite differences, float64)', () => {
  for (const opType of ['Add', 'Sub', 'Mul', 'Div']) {
    it(`${opType} with broadcasting on both sides and a symbolic batch dim`, async () => {
      await expectGradients({
        inputs: [
          { name: 'a', shape: [2, 3, 1], declared: ['batch', 3, 1], data: opType === 'Div' ? awayFromZero(6, 1) : undefined },
          { name: 'b', shape: [3, 4], data: opType === 'Div' ? awayFromZero(12, 2) : undefined },
        ],
        build: (g) => op(g, opType, ['a', 'b']),
        symbols: batch,
      }, ALL_MODES);
    });
  }

  it('Add of equal static shapes emits no reduction', async () => {
    const [r] = await expectGradients({
      inputs: [{ name: 'a', shape: [2, 3] }, { name: 'b', shape: [2, 3] }],
      build: (g) => op(g, 'Add', ['a', 'b']),
    });
    expect(r!.backwardOps.filter((o) => o.startsWith('Reduce') || o === 'NonZero')).toEqual([]);
  });

  it('Add of a bias over symbolic batch/sequence dims reduces the proven axes statically', async () => {
    const [r] = await expectGradients({
      inputs: [{ name: 'x', shape: [2, 3, 4], declared: ['batch', 'seq', 4] }, { name: 'bias', shape: [4] }],
      build: (g) => op(g, 'Add', ['bias', 'x']),
      symbols: { batch: 2, seq: 3 },
    }, ['symbolic']);
    // One ReduceSum (the bias gradient over the two proven axes), no run-time axis computation.
    expect(r!.backwardOps.filter((o) => o === 'ReduceSum')).toHaveLength(1);
    expect(r!.backwardOps.filter((o) => o === 'NonZero')).toHaveLength(0);
  });

  it('Neg and variadic Sum', async () => {
    await expectGradients({
      inputs: [{ name: 'a', shape: [2, 3] }, { name: 'b', shape: [3] }, { name: 'c', shape: [2, 1] }],
      build: (g) => op(g, 'Neg', [op(g, 'Sum', ['a', 'b', 'c'])]),
    }, ['static', 'unknown']);
  });

  it('Pow with constant exponents 2, 3 and 0.5, and with a trainable exponent', async () => {
    await expectGradients({
      inputs: [{ name: 'x', shape: [2, 3], data: awayFromZero(6, 3, 0.5, false) }],
      build: (g) => [
        op(g, 'Pow', ['x', op(g, 'Constant', [], { value: { type: 'tensor', value: { name: '', dataType: 11, dims: [], raw: new Uint8Array(new Float64Array([2]).buffer) } } })]),
        op(g, 'Pow', ['x', floatInit(g, 'three', [3], [])]),
        op(g, 'Pow', ['x', floatInit(g, 'half', [0.5], [])]),
      ],
    });
    await expectGradients({
      inputs: [{ name: 'x', shape: [2, 3], data: awayFromZero(6, 4, 0.5, false) }, { name: 'e', shape: [3] }],
      build: (g) => op(g, 'Pow', ['x', 'e']),
    }, ['static', 'unknown']);
  });

  const unary: Array<[string, number[] | undefined]> = [
    ['Sqrt', awayFromZero(6, 5, 0.3, false)],
    ['Exp', undefined],
    ['Log', awayFromZero(6, 6, 0.3, false)],
    ['Tanh', undefined],
    ['Relu', awayFromZero(6, 7, 0.1)],
    ['Sigmoid', undefined],
    ['Reciprocal', awayFromZero(6, 8, 0.4)],
  ];
  for (const [opType, data] of unary) {
    it(`${opType}`, async () => {
      await expectGradients({ inputs: [{ name: 'x', shape: [2, 3], data }], build: (g) => op(g, opType, ['x']) });
    });
  }

  it('Erf (float32: onnxruntime has no double Erf kernel)', async () => {
    await expectGradients({ type: 'float32', inputs: [{ name: 'x', shape: [2, 4] }], build: (g) => op(g, 'Erf', ['x']) });
  });

  for (const approximate of ['none', 'tanh']) {
    it(`Gelu approximate=${approximate} (opset 20 op; float32)`, async () => {
      const [r] = await expectGradients({
        type: 'float32',
        opset: 20,
        inputs: [{ name: 'x', shape: [2, 5], data: [-3, -1.5, -0.7, -0.2, 0, 0.1, 0.4, 1.1, 2, 3.5] }],
        build: (g) => op(g, 'Gelu', ['x'], { approximate: str(approximate) }),
      });
      // The rule writes Gelu's derivative with opset-17 ops.
      expect(r!.backwardOps).not.toContain('Gelu');
    });
  }
});

describe('softmax rules', () => {
  for (const axis of [-1, 1]) {
    it(`Softmax axis ${axis}`, async () => {
      await expectGradients({
        inputs: [{ name: 'x', shape: [2, 3, 4], declared: ['batch', 3, 4] }],
        build: (g) => op(g, 'Softmax', ['x'], { axis: int(axis) }),
        symbols: batch,
      }, ['static', 'infer']);
    });
    it(`LogSoftmax axis ${axis}`, async () => {
      await expectGradients({
        inputs: [{ name: 'x', shape: [2, 3, 4] }],
        build: (g) => op(g, 'LogSoftmax', ['x'], { axis: int(axis) }),
      });
    });
  }
});

describe('reduction rules', () => {
  it('ReduceMean with the axes attribute, keepdims 1 and 0 (opset 17)', async () => {
    await expectGradients({
      inputs: [{ name: 'x', shape: [2, 3, 4], declared: ['batch', 3, 4] }],
      build: (g) => [
        op(g, 'ReduceMean', ['x'], { axes: ints([-1]) }),
        op(g, 'ReduceMean', ['x'], { axes: ints([0, 2]), keepdims: int(0) }),
        op(g, 'ReduceMean', ['x'], { keepdims: int(0) }),
      ],
      symbols: batch,
    }, ALL_MODES);
  });

  it('ReduceMean with axes as an input (opset 18)', async () => {
    await expectGradients({
      opset: 18,
      inputs: [{ name: 'x', shape: [2, 3, 4] }],
      build: (g) => op(g, 'ReduceMean', ['x', int64Init(g, 'axes', [1])], { keepdims: int(0) }),
    }, ['static', 'unknown']);
  });

  it('ReduceSum with constant, run-time and no axes', async () => {
    await expectGradients({
      inputs: [
        { name: 'x', shape: [2, 3, 4] },
        { name: 'axes', shape: [1], type: 'int64', data: [-2] },
      ],
      build: (g) => [
        op(g, 'ReduceSum', ['x', int64Init(g, 'a1', [0, 1])], { keepdims: int(0) }),
        op(g, 'ReduceSum', ['x', 'axes'], { keepdims: int(0) }),
        op(g, 'ReduceSum', ['x'], { keepdims: int(1) }),
        op(g, 'ReduceSum', ['x', int64Init(g, 'none', [], [0])], { keepdims: int(0), noop_with_empty_axes: int(1) }),
      ],
    }, ['static', 'unknown']);
  });
});

describe('MatMul and Gemm rules', () => {
  const cases: Array<[string, number[], number[], (string | number)[]?]> = [
    ['activations @ 2-D weight', [2, 3, 4], [4, 5], ['batch', 3, 4]],
    ['broadcast batch dims on both sides', [2, 1, 3, 4], [3, 4, 5]],
    ['attention-style 4-D', [2, 2, 3, 4], [2, 2, 4, 3]],
    ['2-D @ batched', [3, 4], [2, 4, 5]],
    ['1-D @ batched', [4], [2, 4, 5]],
    ['batched @ 1-D', [2, 3, 4], [4]],
    ['1-D @ 1-D', [4], [4]],
    ['2-D @ 2-D', [3, 4], [4, 2]],
  ];
  for (const [label, sa, sb, declared] of cases) {
    it(`MatMul ${label}`, async () => {
      await expectGradients({
        inputs: [{ name: 'a', shape: sa, declared }, { name: 'b', shape: sb }],
        build: (g) => op(g, 'MatMul', ['a', 'b']),
        symbols: batch,
      }, declared ? ALL_MODES : ['static', 'unknown']);
    });
  }

  it('MatMul through a transposed Linear weight reads the weight directly', async () => {
    const [r] = await expectGradients({
      inputs: [{ name: 'x', shape: [2, 3, 4], declared: ['batch', 3, 4] }, { name: 'w', shape: [5, 4] }],
      build: (g) => op(g, 'MatMul', ['x', op(g, 'Transpose', ['w'], { perm: ints([1, 0]) })]),
      symbols: batch,
    }, ['symbolic']);
    // dX = dY @ W (no transpose of the transposed weight), dW via one 2-D MatMul.
    expect(r!.backwardOps.filter((o) => o === 'MatMul')).toHaveLength(2);
    expect(r!.backwardOps.filter((o) => o === 'ReduceSum' || o === 'NonZero')).toEqual([]);
  });

  for (const [transA, transB] of [[0, 0], [0, 1], [1, 0], [1, 1]]) {
    it(`Gemm transA=${transA} transB=${transB} alpha/beta, C broadcast`, async () => {
      await expectGradients({
        inputs: [
          { name: 'a', shape: transA ? [4, 3] : [3, 4] },
          { name: 'b', shape: transB ? [5, 4] : [4, 5] },
          { name: 'c', shape: transA ? [5] : [3, 1] },
        ],
        build: (g) => op(g, 'Gemm', ['a', 'b', 'c'], { transA: int(transA), transB: int(transB), alpha: float(0.7), beta: float(-1.3) }),
      }, ['static', 'unknown']);
    });
  }
});

describe('LayerNormalization rule', () => {
  for (const type of ['float32', 'float64'] as const) {
    it(`last axis with scale and bias (${type}: ${type === 'float32' ? 'reuses the forward Mean/InvStdDev' : 'recomputes statistics'})`, async () => {
      const [r] = await expectGradients({
        type,
        inputs: [{ name: 'x', shape: [2, 3, 4], declared: ['batch', 3, 4] }, { name: 'scale', shape: [4] }, { name: 'bias', shape: [4] }],
        build: (g) => op(g, 'LayerNormalization', ['x', 'scale', 'bias'], { epsilon: float(1e-5) }),
        symbols: batch,
      }, ['static', 'symbolic']);
      if (type === 'float32') expect(r!.backwardOps.filter((o) => o === 'ReduceMean')).toHaveLength(2);
      else expect(r!.backwardOps.filter((o) => o === 'ReduceMean')).toHaveLength(4);
    });
  }

  it('two normalised axes (axis=1 on rank 3), no bias', async () => {
    await expectGradients({
      inputs: [{ name: 'x', shape: [2, 3, 4] }, { name: 'scale', shape: [3, 4] }],
      build: (g) => op(g, 'LayerNormalization', ['x', 'scale'], { axis: int(1) }),
    }, ['static', 'unknown']);
  });

  it('only the scale and bias trainable: no input gradient computed', async () => {
    const [r] = await expectGradients({
      type: 'float32',
      inputs: [{ name: 'x', shape: [2, 3, 4], trainable: false }, { name: 'scale', shape: [4] }, { name: 'bias', shape: [4] }],
      build: (g) => op(g, 'LayerNormalization', ['x', 'scale', 'bias']),
    });
    expect(r!.backwardOps.filter((o) => o === 'ReduceMean')).toHaveLength(0);
  });
});
