/**
 * Shapes of forward values assembled from the batch's input (src/artifacts/native/batch-shapes.ts):
 * the rewritten Shape nodes give the same dimensions in ONNX Runtime, read only the input that
 * carries `batch` and `sequence`, honour Shape's start/end, and values of other dimensions stay.
 */
import { describe, expect, it } from 'vitest';
import * as ort from 'onnxruntime-node';
import { shapesFromBatchInput } from '../../src/artifacts/native/batch-shapes.js';
import { DataType } from '../../src/onnx/dtype.js';
import { A, Graph } from '../../src/onnx/graph.js';
import { encodeModel, newModel } from '../../src/onnx/io.js';

/** ids [batch, sequence], x [batch, sequence, 4], z [n, 4]; y = x + x; outputs Shape(y), Shape(y)[1:], Shape(y)[-1:], Shape(z). */
function graph(withIds = true): Graph {
  const g = new Graph();
  if (withIds) g.inputs.push({ name: 'ids', elemType: DataType.INT64, shape: ['batch', 'sequence'] });
  g.inputs.push({ name: 'x', elemType: DataType.FLOAT, shape: ['batch', 'sequence', 4] }, { name: 'z', elemType: DataType.FLOAT, shape: ['n', 4] });
  g.addNode({ opType: 'Add', name: '/y', inputs: ['x', 'x'], outputs: ['y'] });
  g.addNode({ opType: 'Shape', name: '/all', inputs: ['y'], outputs: ['all'] });
  g.addNode({ opType: 'Shape', name: '/tail', inputs: ['y'], outputs: ['tail'], attrs: { start: A.int(1) } });
  g.addNode({ opType: 'Shape', name: '/last', inputs: ['y'], outputs: ['last'], attrs: { start: A.int(-1) } });
  g.addNode({ opType: 'Shape', name: '/z', inputs: ['z'], outputs: ['zs'] });
  for (const o of ['all', 'tail', 'last', 'zs']) g.outputs.push({ name: o, elemType: DataType.INT64, shape: [null] });
  return g;
}

describe('shapes from the batch input', () => {
  it('gives the dimensions Shape gave, without reading the tensor', async () => {
    const model = newModel(graph(), 17);
    expect(shapesFromBatchInput(model)).toBe(3);
    // Only the carrier and z are measured any more; y is read by nothing but the graph's own Add.
    const measured = model.graph.nodes.filter((n) => n.opType === 'Shape').map((n) => n.inputs[0]).sort();
    expect(measured).toEqual(['ids', 'z']);
    expect(model.graph.consumers('y')).toEqual([]);
    const s = await ort.InferenceSession.create(encodeModel(model));
    const out = await s.run({
      ids: new ort.Tensor('int64', new BigInt64Array(6), [2, 3]),
      x: new ort.Tensor('float32', new Float32Array(24), [2, 3, 4]),
      z: new ort.Tensor('float32', new Float32Array(20), [5, 4]),
    });
    const dims = (name: string) => Array.from(out[name]!.data as BigInt64Array, Number);
    expect(dims('all')).toEqual([2, 3, 4]);
    expect(dims('tail')).toEqual([3, 4]);
    expect(dims('last')).toEqual([4]);
    expect(dims('zs')).toEqual([5, 4]);
    await s.release();
  });

  it('does nothing without an input that carries both batch dimensions', () => {
    const model = newModel(graph(false), 17);
    // x carries them itself: measuring it is what the rewrite would do anyway.
    model.graph.inputs = model.graph.inputs.filter((i) => i.name !== 'x');
    model.graph.inputs.push({ name: 'x', elemType: DataType.FLOAT, shape: ['batch', 4] });
    expect(shapesFromBatchInput(model)).toBe(0);
    expect(model.graph.nodes.filter((n) => n.opType === 'Shape')).toHaveLength(4);
  });
});
