import type { Graph, Node } from '../onnx/graph.js';

/**
 * How a stored tensor reaches the ops that compute with it. Exporters put value-preserving nodes in
 * between: `Identity` (torch's initializer dedup: one tensor standing for several parameters),
 * `Transpose` (training-mode export and the builder: HF [out,in] weight feeding MatMul) and `Cast`.
 */

/** Nodes that pass a weight on unchanged in value (up to layout). */
const WRAPPERS = new Set(['Transpose', 'Cast']);

/** One computing use of a weight: the node, which input it is, and the wrappers it went through. */
export interface Use {
  node: Node;
  index: number;
  /** Transpose/Cast nodes between the weight and `node`, outermost first. */
  via: Node[];
}

/**
 * The values that stand for distinct parameters backed by initializer `storage`: the initializer
 * itself when something other than an `Identity` reads it, and the end of every `Identity` chain
 * hanging from it that something reads.
 */
export function accessValues(graph: Graph, storage: string): string[] {
  const out: string[] = [];
  const seen = new Set<string>();
  const visit = (value: string) => {
    if (seen.has(value)) return;
    seen.add(value);
    const consumers = graph.consumers(value);
    if (consumers.some((n) => n.opType !== 'Identity') || graph.isGraphOutput(value)) out.push(value);
    for (const n of consumers) if (n.opType === 'Identity' && n.outputs[0]) visit(n.outputs[0]);
  };
  visit(storage);
  return out;
}

/** The initializer behind `value`, following `Identity` nodes upwards; undefined if there is none. */
export function storageOf(graph: Graph, value: string): string | undefined {
  let v = value;
  for (let guard = 0; guard < 1000; guard++) {
    if (graph.initializers.has(v)) return v;
    const p = graph.producer(v);
    if (!p || p.opType !== 'Identity' || !p.inputs[0]) return undefined;
    v = p.inputs[0];
  }
  return undefined;
}

/** The computing uses of `value`, looking through Transpose/Cast wrappers (not through Identity). */
export function usesOf(graph: Graph, value: string): Use[] {
  const out: Use[] = [];
  const walk = (v: string, via: Node[]) => {
    for (const n of graph.consumers(v)) {
      if (n.opType === 'Identity') continue;
      if (WRAPPERS.has(n.opType) && n.outputs[0] && via.length < 8) {
        walk(n.outputs[0], [...via, n]);
        continue;
      }
      n.inputs.forEach((inp, index) => {
        if (inp === v) out.push({ node: n, index, via });
      });
    }
  };
  walk(value, []);
  return out;
}

/** The value upstream of `value` after stepping back over Transpose/Cast wrappers. */
export function unwrapUpwards(graph: Graph, value: string): string {
  let v = value;
  for (let guard = 0; guard < 8; guard++) {
    const p = graph.producer(v);
    if (!p || !WRAPPERS.has(p.opType) || !p.inputs[0]) return v;
    v = p.inputs[0];
  }
  return v;
}
