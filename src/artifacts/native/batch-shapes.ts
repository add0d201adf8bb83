/**
 * Shape(v) nodes of the native training models rewritten to read the batch's own input instead of v.
 *
 * The backward pass reads the shapes of forward values (a Reshape's gradient reshapes back to its
 * input's shape, a broadcast Add's gradient sums back to it). In ONNX that is a Shape node on the
 * forward value, and ONNX Runtime runs it when the backward needs it: until then the whole tensor
 * stays allocated to answer a question about its dimensions. For BERT these are the query, key and
 * value projections and the attention context, four tensors the size of a layer's hidden states per
 * layer, kept from the forward pass to the backward for nothing. Where shape inference knows v's
 * shape as fixed sizes and the batch's `batch`/`sequence` dimensions, the shape is assembled from
 * Shape(input) of the graph input that carries those two, which is alive anyway.
 */
import { A, attrInt, isOnnxOp, type Model, type ValueInfo } from '../../onnx/graph.js';
import { inferShapes } from '../../onnx/shapes.js';
import { int64s } from '../../onnx/tensor.js';
import { BATCH_DIMS } from './dropout-inputs.js';

/** Rewrite in place; returns the number of Shape nodes rewritten. */
export function shapesFromBatchInput(model: Model, shapes: Map<string, ValueInfo> = inferShapes(model)): number {
  const g = model.graph;
  // The input that carries both batch dimensions: input_ids [batch, sequence], or the cached
  // hidden states [batch, sequence, hidden] of the frozen-prefix models.
  const carrier = g.inputs.find((i) => !g.initializers.has(i.name) && [...BATCH_DIMS].every((d) => i.shape?.includes(d)));
  if (!carrier) return 0;
  let carrierShape: string | undefined;
  const dimOfCarrier = new Map<string, string>();
  let rewritten = 0;
  for (const n of [...g.nodes]) {
    if (!isOnnxOp(n, 'Shape') || n.inputs[0] === carrier.name) continue;
    const shape = shapes.get(n.inputs[0]!)?.shape;
    if (!shape || !shape.every((d) => typeof d === 'number' || (typeof d === 'string' && BATCH_DIMS.has(d)))) continue;
    // Shape's optional start/end (opset 15) select a slice of the dimensions.
    const rank = shape.length;
    const clamp = (v: number) => Math.min(Math.max(v < 0 ? v + rank : v, 0), rank);
    const dims = shape.slice(clamp(attrInt(n, 'start', 0)), clamp(attrInt(n, 'end', rank)));
    const parts = dims.map((d) => {
      if (typeof d === 'number') return g.addInitializer(int64s(`${n.name}/dim`, [d]));
      let part = dimOfCarrier.get(d as string);
      if (!part) {
        carrierShape ??= g.addNode({ opType: 'Shape', name: `/batch_shape/${carrier.name}`, inputs: [carrier.name] }).outputs[0]!;
        const axis = g.addInitializer(int64s(`/batch_shape/${d}/axis`, [carrier.shape!.indexOf(d)]));
        part = g.addNode({ opType: 'Gather', name: `/batch_shape/${d}`, inputs: [carrierShape, axis], attrs: { axis: A.int(0) } }).outputs[0]!;
        dimOfCarrier.set(d as string, part);
      }
      return part;
    });
    const out = n.outputs[0]!;
    g.removeNodes([n]);
    if (parts.length === 0) g.initializers.set(out, int64s(out, [], [0]));
    else g.addNode({ opType: 'Concat', name: n.name, inputs: parts, outputs: [out], attrs: { axis: A.int(0) } });
    rewritten++;
  }
  if (rewritten) g.topologicalSort();
  return rewritten;
}
