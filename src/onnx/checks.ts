/**
 * Structural checks of a loaded model that ONNX Runtime would otherwise only report when it first
 * loads a derived graph, in its own words: an input no one defines, an opset it cannot run.
 */
import { ModtuneError } from '../errors.js';
import type { Model } from './graph.js';

/** Every node input is a graph input, an initializer or another node's output (top-level graph). */
export function checkNoDanglingInputs(model: Model, label: string): void {
  const g = model.graph;
  const defined = new Set<string>([...g.inputs.map((i) => i.name), ...g.initializers.keys()]);
  for (const n of g.nodes) for (const o of n.outputs) if (o) defined.add(o);
  for (const n of g.nodes) {
    for (const i of n.inputs) {
      if (i && !defined.has(i)) {
        throw new ModtuneError(`${label}: node '${n.name || '(unnamed)'}' (${n.opType}) reads '${i}', which is neither a graph input, an initializer nor any node's output; the model is incomplete`);
      }
    }
  }
  for (const o of g.outputs) {
    if (!defined.has(o.name)) throw new ModtuneError(`${label}: graph output '${o.name}' is computed by no node`);
  }
}

/**
 * The newest standard opset modtune's gradient rules and both runtimes it targets understand:
 * onnxruntime-web 1.19 (the ort-web training backend and the browser) runs up to opset 21.
 */
export const MAX_OPSET = 21;

/**
 * Refuse a standard opset the runtimes cannot load, before anything is derived from the model.
 * (Ops of other domains are left alone: off the gradient path they cost nothing, on it the
 * gradient builder names them.)
 */
export function checkOpsets(model: Model, label: string): void {
  for (const o of model.opsetImports) {
    if ((o.domain === '' || o.domain === 'ai.onnx') && (o.version < 1 || o.version > MAX_OPSET)) {
      throw new ModtuneError(`${label}: opset ${o.version} of the standard ONNX domain is not supported (1 to ${MAX_OPSET}: ONNX Runtime web 1.19 runs no newer); re-export the model with opset ${MAX_OPSET} or lower`);
    }
  }
}
