import { describe, expect, it } from 'vitest';
import { gradCheck } from './harness.js';
import { expectGradients, floatInit, int, ints, op, str } from './util.js';

const labels = (data: number[], shape: number[]) => ({ name: 'labels', shape, type: 'int64' as const, data });

describe('loss rules (finite differences, float64)', () => {
  it('SoftmaxCrossEntropyLoss, reduction mean, as the loss itself', async () => {
    const [r] = await expectGradients({
      inputs: [{ name: 'scores', shape: [3, 4], declared: ['batch', 4] }, labels([2, 0, 3], [3])],
      build: (g) => op(g, 'SoftmaxCrossEntropyLoss', ['scores', 'labels']),
      lossIsOutput: true,
      symbols: { batch: 3 },
    }, ['static', 'symbolic', 'infer']);
    expect(r!.backwardOps).toContain('ScatterElements');
  });

  it('SoftmaxCrossEntropyLoss, mean with class weights and ignore_index, extra dims [N, C, d]', async () => {
    await expectGradients({
      inputs: [{ name: 'scores', shape: [2, 3, 2] }, labels([0, -100, 2, 1], [2, 2])],
      build: (g) => op(g, 'SoftmaxCrossEntropyLoss', ['scores', 'labels', floatInit(g, 'w', [0.5, 2, 1.5], [3])], { ignore_index: int(-100) }),
      lossIsOutput: true,
    }, ['static', 'unknown']);
  });

  it('SoftmaxCrossEntropyLoss, reduction sum with ignore_index', async () => {
    await expectGradients({
      inputs: [{ name: 'scores', shape: [4, 3] }, labels([1, 1, 0, 2], [4])],
      build: (g) => op(g, 'SoftmaxCrossEntropyLoss', ['scores', 'labels'], { reduction: str('sum'), ignore_index: int(0) }),
      lossIsOutput: true,
    });
  });

  it('SoftmaxCrossEntropyLoss, reduction none (per-sample losses weighted downstream)', async () => {
    await expectGradients({
      inputs: [{ name: 'scores', shape: [3, 4] }, labels([3, 1, 0], [3])],
      build: (g) => op(g, 'SoftmaxCrossEntropyLoss', ['scores', 'labels'], { reduction: str('none') }),
    }, ['static', 'unknown']);
  });

  it('SoftmaxCrossEntropyLoss with every label ignored: zero gradient, not NaN', async () => {
    // onnxruntime's forward loss is 0/0 = NaN here, so there is nothing to difference; the
    // gradient must still be finite so that one such batch cannot poison the weights.
    const r = await gradCheck({
      inputs: [{ name: 'scores', shape: [2, 3] }, labels([-1, -1], [2])],
      build: (g) => op(g, 'SoftmaxCrossEntropyLoss', ['scores', 'labels'], { ignore_index: int(-1) }),
      lossIsOutput: true,
    });
    expect(Array.from(r.gradients.get('scores')!)).toEqual([0, 0, 0, 0, 0, 0]);
  });

  it('NegativeLogLikelihoodLoss over LogSoftmax, mean with ignore_index', async () => {
    await expectGradients({
      inputs: [{ name: 'x', shape: [4, 3] }, labels([2, 1, 2, 0], [4])],
      build: (g) => op(g, 'NegativeLogLikelihoodLoss', [op(g, 'LogSoftmax', ['x'], { axis: int(1) }), 'labels'], { ignore_index: int(1) }),
      lossIsOutput: true,
    });
  });

  it('mean squared error of a linear regression head', async () => {
    await expectGradients({
      inputs: [
        { name: 'x', shape: [3, 4], declared: ['batch', 4], trainable: false },
        { name: 'w', shape: [1, 4] },
        { name: 'b', shape: [1] },
        { name: 'target', shape: [3], declared: ['batch'], trainable: false },
      ],
      build: (g) => {
        const pred = op(g, 'Gemm', ['x', 'w', 'b'], { transB: int(1) });
        const flat = op(g, 'Squeeze', [pred, g.addInitializer({ name: 'ax', dataType: 7, dims: [1], raw: new Uint8Array(new BigInt64Array([1n]).buffer) })]);
        const diff = op(g, 'Sub', [flat, 'target']);
        return op(g, 'ReduceMean', [op(g, 'Mul', [diff, diff])], { axes: ints([0]), keepdims: int(0) });
      },
      lossIsOutput: true,
      symbols: { batch: 3 },
    }, ['static', 'symbolic', 'unknown', 'infer']);
  });
});
