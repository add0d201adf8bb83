import { ModtuneError } from '../errors.js';
import { DataType } from '../onnx/dtype.js';
import type { Model } from '../onnx/graph.js';
import { tensorFloat32 } from '../onnx/tensor.js';
import type { ParameterInfo } from '../modules/index.js';

/** A trainable parameter after it became a graph input under its Hugging Face name and layout. */
export interface ExposedParameter {
  info: ParameterInfo;
  /** Hugging Face name = graph input name. */
  name: string;
  /** Hugging Face layout. */
  shape: number[];
  /** Its value in the base model, Hugging Face layout. */
  initial: Float32Array;
}

/** Transpose a row-major [rows, cols] matrix. */
export function transpose2d(data: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(data.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = data[r * cols + c]!;
  return out;
}

/**
 * Turn the selected parameters from initializers into graph inputs named by their Hugging Face
 * names, in Hugging Face layout, whatever the exporter called and laid them out as. A parameter the
 * exporter stored pre-transposed gets a Transpose node back to the layout its consumers expect, so
 * checkpoints, deltas and manifests only ever speak Hugging Face. Shared tensors must have been
 * un-shared first (`unshareParameters`).
 */
export function exposeTrainableParameters(model: Model, params: ParameterInfo[]): ExposedParameter[] {
  const g = model.graph;
  const out: ExposedParameter[] = [];
  for (const p of params) {
    const t = g.initializers.get(p.name);
    if (!t) throw new ModtuneError(`parameter '${p.hfName}': initializer '${p.name}' not found in graph '${g.name}'`);
    if (t.dataType !== DataType.FLOAT) {
      throw new ModtuneError(`parameter '${p.hfName}' (initializer '${p.name}') is not float32; only float32 parameters can train`);
    }
    let initial = tensorFloat32(t);
    if (p.transposed) {
      if (t.dims.length !== 2) throw new ModtuneError(`parameter '${p.hfName}': stored transposed but is not 2-D (${t.dims})`);
      initial = transpose2d(initial, t.dims[0]!, t.dims[1]!);
    }
    // Untransposed values stay views of the loaded model: nothing writes to them.
    g.initializers.delete(p.name);
    const name = p.hfName;
    if (name !== p.name && (g.initializers.has(name) || g.producer(name) || g.isGraphInput(name))) {
      throw new ModtuneError(`parameter '${p.hfName}': its name is already used by another value in graph '${g.name}'`);
    }
    if (p.transposed) {
      g.addNode({ opType: 'Transpose', inputs: [name], outputs: [p.name], name: `/params/${name}/to_exported_layout`, attrs: { perm: { type: 'ints', value: [1, 0] } } });
    } else if (name !== p.name) {
      g.replaceUses(p.name, name);
    }
    g.inputs.push({ name, elemType: DataType.FLOAT, shape: [...p.hfShape] });
    out.push({ info: p, name, shape: [...p.hfShape], initial });
  }
  g.invalidate();
  if (out.some((p) => p.info.transposed)) g.topologicalSort();
  return out;
}
