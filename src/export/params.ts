/** Reading and writing a parameter's values in a graph, in the Hugging Face layout. */
import { ModtuneError } from '../errors.js';
import { transpose2d } from '../artifacts/expose.js';
import type { ParameterInfo } from '../modules/index.js';
import { storageOf } from '../modules/uses.js';
import { DataType } from '../onnx/dtype.js';
import type { Model } from '../onnx/graph.js';
import { makeTensor, tensorFloat32 } from '../onnx/tensor.js';

/** A parameter's current values in Hugging Face layout (a fresh array). */
export function hfValues(model: Model, p: ParameterInfo): Float32Array {
  const storage = storageOf(model.graph, p.name);
  const t = storage ? model.graph.initializers.get(storage) : undefined;
  if (!t) throw new ModtuneError(`parameter '${p.hfName}': no initializer behind '${p.name}' in graph '${model.graph.name}'`);
  const data = tensorFloat32(t);
  return p.transposed ? transpose2d(data, t.dims[0]!, t.dims[1]!) : Float32Array.from(data);
}

/**
 * Replace the values of the initializer `p.name` (which must be the parameter's own, i.e. un-shared)
 * with `hf`, given in Hugging Face layout; transposed back when the graph stores it transposed.
 */
export function setHfValues(model: Model, p: ParameterInfo, hf: Float32Array): void {
  const g = model.graph;
  const t = g.initializers.get(p.name);
  if (!t) throw new ModtuneError(`parameter '${p.hfName}': initializer '${p.name}' not found in graph '${g.name}' (shared tensors must be un-shared first)`);
  if (t.dataType !== DataType.FLOAT) throw new ModtuneError(`parameter '${p.hfName}' (initializer '${p.name}') is not float32 in the base model; cannot apply a delta to it`);
  if (hf.length !== p.size) throw new ModtuneError(`parameter '${p.hfName}': ${hf.length} values for ${p.size} entries`);
  const stored = p.transposed ? transpose2d(hf, t.dims[1]!, t.dims[0]!) : Float32Array.from(hf);
  g.initializers.set(p.name, { ...makeTensor(p.name, DataType.FLOAT, t.dims, stored), docString: t.docString });
}
