import { ModtuneError } from '../errors.js';
import type { Model, Node } from '../onnx/graph.js';
import type { Tensor } from '../onnx/tensor.js';
import type { ParameterInfo } from './types.js';
import { accessValues, storageOf } from './uses.js';

/**
 * Give each of `params` a stored tensor of its own, so that training it changes nothing else.
 *
 * torch merges equal initializers on export (freshly initialised LayerNorms are all ones/zeros) and
 * reads the duplicates through `Identity` nodes. A parameter read through such an `Identity` gets
 * an initializer named like the `Identity` output (its `name` does not change) and the `Identity`
 * goes; a parameter that is the stored tensor itself keeps it, and the other readers move to a copy.
 * Parameters not passed keep sharing among themselves. `sharedBy` of the passed parameters is
 * cleared; re-run discovery for an up-to-date view of the rest.
 */
export function unshareParameters(model: Model, params: ParameterInfo[]): void {
  const graph = model.graph;
  // Aliases first: when every reader of a stored tensor is selected, the stored tensor then needs
  // no extra copy for the readers that were not.
  const aliasesFirst = [...params].sort((a, b) => Number(graph.initializers.has(a.name)) - Number(graph.initializers.has(b.name)));
  for (const p of aliasesFirst) {
    const storage = storageOf(graph, p.name);
    if (!storage) throw new ModtuneError(`parameter '${p.name}' (${p.hfName}): no initializer behind it in graph '${graph.name}'`);
    const tensor = graph.initializers.get(storage)!;
    if (p.name !== storage) {
      const identity = graph.producer(p.name);
      if (!identity || identity.opType !== 'Identity') {
        throw new ModtuneError(`parameter '${p.name}' (${p.hfName}): expected an Identity node producing it, found ${identity?.opType ?? 'none'}`);
      }
      graph.removeNodes([identity]);
      removeDeadIdentities(model, identity.inputs[0]!);
      graph.initializers.set(p.name, copyOf(tensor, p.name));
    } else if (accessValues(graph, storage).length > 1) {
      const readers = graph.consumers(storage).filter((n) => n.opType === 'Identity');
      const copyName = graph.uniqueName(`${storage}.shared`);
      graph.initializers.set(copyName, copyOf(tensor, copyName));
      for (const n of readers) rewire(n, storage, copyName);
      graph.invalidate();
    }
    delete p.sharedBy;
  }
}

function copyOf(t: Tensor, name: string): Tensor {
  // A fresh buffer: `raw` may be a Node Buffer, whose slice() is a view, not a copy.
  return { ...t, name, raw: new Uint8Array(t.raw), dims: [...t.dims] };
}

function rewire(n: Node, from: string, to: string): void {
  for (let i = 0; i < n.inputs.length; i++) if (n.inputs[i] === from) n.inputs[i] = to;
}

/** Drop the `Identity` chain links above `value` (and the stored tensor) that nothing reads any more. */
function removeDeadIdentities(model: Model, value: string): void {
  const graph = model.graph;
  let v = value;
  for (let guard = 0; guard < 1000; guard++) {
    if (graph.consumers(v).length > 0 || graph.isGraphOutput(v)) return;
    if (graph.initializers.has(v)) {
      // The stored tensor was only read through Identity nodes, all of which now have copies.
      if (!graph.isGraphInput(v)) graph.initializers.delete(v);
      return;
    }
    const p = graph.producer(v);
    if (!p || p.opType !== 'Identity') return;
    graph.removeNodes([p]);
    v = p.inputs[0]!;
  }
}
