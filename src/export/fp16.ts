/**
 * Half-size model files: big float32 weights are stored as float16, each followed by a Cast back to
 * float32. ONNX Runtime folds the Casts when it loads the model, so inference still computes in
 * float32 (same kernels, same speed) and only the weights are rounded to float16 — the file and the
 * download halve, accuracy moves by the rounding of the weights alone.
 */
import { DataType } from '../onnx/dtype.js';
import { A, Model } from '../onnx/graph.js';
import { makeTensor, numel, tensorFloat32 } from '../onnx/tensor.js';
import { floatToHalf } from '../onnx/dtype.js';

const HALF_MAX = 65504;
/** Smaller tensors stay float32: they save nothing worth a node. */
const MIN_ELEMENTS = 1024;

export interface Fp16Result {
  tensors: number;
  bytesBefore: number;
  bytesAfter: number;
}

export function storeWeightsAsFloat16(model: Model): Fp16Result {
  const g = model.graph;
  const overridable = new Set(g.inputs.map((i) => i.name));
  const result: Fp16Result = { tensors: 0, bytesBefore: 0, bytesAfter: 0 };
  const casts = [];
  for (const t of [...g.initializers.values()]) {
    if (t.dataType !== DataType.FLOAT || numel(t.dims) < MIN_ELEMENTS || overridable.has(t.name)) continue;
    const data = tensorFloat32(t);
    // Values outside float16's range (e.g. a -3.4e38 attention-mask constant) would become ±inf.
    let fits = true;
    for (let i = 0; i < data.length; i++) if (!(Math.abs(data[i]!) <= HALF_MAX)) { fits = false; break; }
    if (!fits) continue;
    const half = new Uint16Array(data.length);
    for (let i = 0; i < data.length; i++) half[i] = floatToHalf(data[i]!);
    g.initializers.delete(t.name);
    const stored = g.addInitializer(makeTensor(`${t.name}.fp16`, DataType.FLOAT16, t.dims, half));
    casts.push(g.addNode({ opType: 'Cast', name: `/fp16/${t.name}/Cast`, inputs: [stored], outputs: [t.name], attrs: { to: A.int(DataType.FLOAT) } }));
    result.tensors++;
    result.bytesBefore += t.raw.byteLength;
    result.bytesAfter += half.byteLength;
  }
  if (casts.length) g.topologicalSort();
  return result;
}
