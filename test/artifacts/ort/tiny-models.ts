/**
 * Tiny forward+backward graphs with hand-written backward nodes, for exercising the ORT artifact
 * builders before (and independently of) the autodiff engine.
 */
import { DataType } from '../../../src/onnx/dtype.js';
import { A, Graph, Model } from '../../../src/onnx/graph.js';
import { newModel } from '../../../src/onnx/io.js';
import { int64s, makeTensor } from '../../../src/onnx/tensor.js';

/** Deterministic values in [-scale, scale). */
export function pseudoRandom(n: number, seed: number, scale = 1): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = ((s / 2 ** 32) * 2 - 1) * scale;
  }
  return out;
}

export interface TinyModel {
  model: Model;
  loss: string;
  /** Parameter → gradient value, as buildBackward reports it. */
  gradients: Map<string, string>;
  seed: string;
}

/**
 * X[B,4] → MatMul W1[4,8] + b1 → Relu → MatMul W2[8,3] + b2 = logits → SoftmaxCrossEntropyLoss
 * (mean) with int64 labels. Backward for every parameter, written by hand:
 *   dlogits = (exp(log_prob) − onehot(labels)) / B · seed,  db2 = Σ_b dlogits,  dW2 = Hᵀ·dlogits,
 *   dH = dlogits·W2ᵀ,  dZ1 = dH ⊙ [Z1 > 0],  db1 = Σ_b dZ1,  dW1 = Xᵀ·dZ1.
 */
export function tinyMlp(batch: number, opts: { backward?: boolean } = {}): TinyModel {
  const g = new Graph();
  g.name = 'tiny_mlp';
  g.inputs = [
    { name: 'x', elemType: DataType.FLOAT, shape: ['batch', 4] },
    { name: 'labels', elemType: DataType.INT64, shape: ['batch'] },
  ];
  g.outputs = [
    { name: 'logits', elemType: DataType.FLOAT, shape: ['batch', 3] },
    { name: 'loss', elemType: DataType.FLOAT, shape: [] },
  ];
  const init = (name: string, dims: number[], seed: number, scale: number) =>
    g.addInitializer(makeTensor(name, DataType.FLOAT, dims, pseudoRandom(dims.reduce((a, b) => a * b, 1), seed, scale)));
  init('fc1.weight', [4, 8], 1, 0.7);
  init('fc1.bias', [8], 2, 0.1);
  init('fc2.weight', [8, 3], 3, 0.7);
  init('fc2.bias', [3], 4, 0.1);
  const seed = g.addInitializer(makeTensor('backward.seed', DataType.FLOAT, [], new Float32Array([1])));
  const batchSize = g.addInitializer(makeTensor('batch_size', DataType.FLOAT, [], new Float32Array([batch])));
  const axis0 = g.addInitializer(int64s('axis0', [0]));
  const zero = g.addInitializer(makeTensor('zero', DataType.FLOAT, [], new Float32Array([0])));
  const onehotValues = g.addInitializer(makeTensor('onehot_values', DataType.FLOAT, [2], new Float32Array([0, 1])));
  const depth = g.addInitializer(int64s('depth', [3], []));
  const n = (opType: string, inputs: string[], outputs?: string[], attrs = {}) => g.addNode({ opType, inputs, outputs, attrs }).outputs;

  const [z1] = n('Add', [n('MatMul', ['x', 'fc1.weight'])[0]!, 'fc1.bias']);
  const [h] = n('Relu', [z1!]);
  n('Add', [n('MatMul', [h!, 'fc2.weight'])[0]!, 'fc2.bias'], ['logits']);
  const [, logProb] = n('SoftmaxCrossEntropyLoss', ['logits', 'labels'], ['loss', 'log_prob'], { reduction: A.string('mean') });

  if (opts.backward === false) {
    for (const name of [seed, batchSize, axis0, zero, onehotValues, depth]) g.initializers.delete(name);
    return { model: newModel(g, 17), loss: 'loss', seed: '', gradients: new Map() };
  }

  // backward
  const [onehot] = n('OneHot', ['labels', depth, onehotValues], undefined, { axis: A.int(-1) });
  const [dlogits] = n('Mul', [n('Div', [n('Sub', [n('Exp', [logProb!])[0]!, onehot!])[0]!, batchSize])[0]!, seed]);
  const [db2] = n('ReduceSum', [dlogits!, axis0], undefined, { keepdims: A.int(0) });
  const [dW2] = n('MatMul', [n('Transpose', [h!], undefined, { perm: A.ints([1, 0]) })[0]!, dlogits!]);
  const [dH] = n('MatMul', [dlogits!, n('Transpose', ['fc2.weight'], undefined, { perm: A.ints([1, 0]) })[0]!]);
  const [dZ1] = n('Where', [n('Greater', [z1!, zero])[0]!, dH!, zero]);
  const [db1] = n('ReduceSum', [dZ1!, axis0], undefined, { keepdims: A.int(0) });
  const [dW1] = n('MatMul', [n('Transpose', ['x'], undefined, { perm: A.ints([1, 0]) })[0]!, dZ1!]);

  return {
    model: newModel(g, 17),
    loss: 'loss',
    seed,
    gradients: new Map([['fc1.weight', dW1!], ['fc1.bias', db1!], ['fc2.weight', dW2!], ['fc2.bias', db2!]]),
  };
}

/** A batch the tiny MLP can fit: the label is the index of the largest of the first three features. */
export function tinyBatch(batch: number, seed: number): { x: Float32Array; labels: BigInt64Array } {
  const x = pseudoRandom(batch * 4, seed, 1);
  const labels = new BigInt64Array(batch);
  for (let b = 0; b < batch; b++) {
    const row = x.subarray(b * 4, b * 4 + 3);
    labels[b] = BigInt(row.indexOf(Math.max(...row)));
  }
  return { x, labels };
}

/**
 * loss = Σ W ⊙ X + Σ b ⊙ F with W[2,3], b[3] (trainable candidates) and F[3] (frozen). The
 * gradients are known exactly: dW = X, db = F, so optimizer updates can be checked by hand.
 */
export function linearLossModel(): TinyModel {
  const g = new Graph();
  g.name = 'linear_loss';
  g.inputs = [{ name: 'x', elemType: DataType.FLOAT, shape: [2, 3] }];
  g.outputs = [{ name: 'loss', elemType: DataType.FLOAT, shape: [] }];
  g.addInitializer(makeTensor('w', DataType.FLOAT, [2, 3], new Float32Array([0.5, -1, 2, 0.25, -0.75, 1.5])));
  g.addInitializer(makeTensor('b', DataType.FLOAT, [3], new Float32Array([0.1, -0.2, 0.3])));
  g.addInitializer(makeTensor('f', DataType.FLOAT, [3], new Float32Array([0.5, -2, 0.125])));
  const seed = g.addInitializer(makeTensor('backward.seed', DataType.FLOAT, [], new Float32Array([1])));
  const n = (opType: string, inputs: string[], outputs?: string[], attrs = {}) => g.addNode({ opType, inputs, outputs, attrs }).outputs;
  const [s1] = n('ReduceSum', [n('Mul', ['w', 'x'])[0]!], undefined, { keepdims: A.int(0) });
  const [s2] = n('ReduceSum', [n('Mul', ['b', 'f'])[0]!], undefined, { keepdims: A.int(0) });
  n('Add', [s1!, s2!], ['loss']);
  const [dw] = n('Mul', ['x', seed]);
  const [db] = n('Mul', ['f', seed]);
  return { model: newModel(g, 17), loss: 'loss', seed, gradients: new Map([['w', dw!], ['b', db!]]) };
}
