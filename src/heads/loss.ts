import { ModtuneError } from '../errors.js';
import { DataType } from '../onnx/dtype.js';
import { A, Dim, Graph } from '../onnx/graph.js';
import { int64s } from '../onnx/tensor.js';

export const LABELS = 'labels';
export const LOSS = 'loss';

/**
 * Append the task loss on `logits` and make the graph's outputs (loss, logits) and add the `labels`
 * input [batch]:
 * - classification: SoftmaxCrossEntropyLoss(logits, int64 labels), reduction mean (opset 12+);
 * - regression: mean over the batch of (logits[:, 0] - labels)^2 with float labels, from
 *   Reshape/Sub/Mul/ReduceMean (valid at every opset the models use: ReduceMean reduces all axes).
 */
export function addLoss(g: Graph, kind: 'classification' | 'regression', batch: Dim, logitsShape: Dim[]): void {
  if (g.isGraphInput(LABELS)) throw new ModtuneError(`the model already has an input named '${LABELS}'; cannot add the task labels`);
  g.reserveName(LABELS);
  g.reserveName(LOSS);
  if (kind === 'classification') {
    g.inputs.push({ name: LABELS, elemType: DataType.INT64, shape: [batch] });
    g.addNode({ opType: 'SoftmaxCrossEntropyLoss', name: '/loss/SoftmaxCrossEntropyLoss', inputs: ['logits', LABELS], outputs: [LOSS], attrs: { reduction: A.string('mean') } });
  } else {
    g.inputs.push({ name: LABELS, elemType: DataType.FLOAT, shape: [batch] });
    const flat = g.addInitializer(int64s('/loss/flat_shape', [-1]));
    const pred = g.addNode({ opType: 'Reshape', name: '/loss/Reshape', inputs: ['logits', flat] }).outputs[0]!;
    const diff = g.addNode({ opType: 'Sub', name: '/loss/Sub', inputs: [pred, LABELS] }).outputs[0]!;
    const sq = g.addNode({ opType: 'Mul', name: '/loss/Mul', inputs: [diff, diff] }).outputs[0]!;
    g.addNode({ opType: 'ReduceMean', name: '/loss/ReduceMean', inputs: [sq], outputs: [LOSS], attrs: { keepdims: A.int(0) } });
  }
  g.outputs = [
    { name: LOSS, elemType: DataType.FLOAT, shape: [] },
    { name: 'logits', elemType: DataType.FLOAT, shape: logitsShape },
  ];
}
