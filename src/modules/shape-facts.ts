import { attrTensor, type Graph } from '../onnx/graph.js';
import { tensorNumbers } from '../onnx/tensor.js';
import { usesOf } from './uses.js';

/**
 * Facts read from constant shape arithmetic. Exporters build the attention head split
 * `x.view(batch, seq, heads, head_dim)` as a Reshape whose target is a constant, or a Concat of
 * constants and runtime dims; the constant part tells the number of heads.
 */

/** The integer values of `value` where they are constant (null = known position, runtime value). */
export function constInts(graph: Graph, value: string, depth = 0): (number | null)[] | undefined {
  if (depth > 12) return undefined;
  const init = graph.initializers.get(value);
  if (init) return tensorNumbers(init);
  const p = graph.producer(value);
  if (!p) return undefined;
  switch (p.opType) {
    case 'Constant': {
      const t = attrTensor(p, 'value');
      return t ? tensorNumbers(t) : undefined;
    }
    case 'Cast':
    case 'Identity':
      return p.inputs[0] ? constInts(graph, p.inputs[0], depth + 1) : undefined;
    case 'Unsqueeze':
      // A scalar made a 1-element vector: its value if constant, else one unknown entry.
      return (p.inputs[0] ? constInts(graph, p.inputs[0], depth + 1) : undefined) ?? [null];
    case 'Concat': {
      const parts: (number | null)[] = [];
      for (const i of p.inputs) {
        const part = i ? constInts(graph, i, depth + 1) : undefined;
        if (!part) return undefined;
        parts.push(...part);
      }
      return parts;
    }
    default:
      return undefined;
  }
}

/**
 * Attention heads from the first 4-D Reshape after the query projection whose last two target
 * dims multiply to the hidden size; undefined when the graph does not say.
 */
export function headsFromGraph(graph: Graph, queryWeight: string, hidden: number): number | undefined {
  if (!hidden) return undefined;
  const start = usesOf(graph, queryWeight).find((u) => u.node.opType === 'MatMul' || u.node.opType === 'Gemm');
  if (!start) return undefined;
  const queue: { value: string; depth: number }[] = start.node.outputs.map((value) => ({ value, depth: 0 }));
  const seen = new Set<string>();
  while (queue.length) {
    const { value, depth } = queue.shift()!;
    if (seen.has(value) || depth > 4) continue;
    seen.add(value);
    for (const n of graph.consumers(value)) {
      if (n.opType === 'Reshape' && n.inputs[0] === value && n.inputs[1]) {
        const dims = constInts(graph, n.inputs[1]);
        if (dims && dims.length === 4) {
          const [a, b] = [dims[2], dims[3]];
          if (typeof a === 'number' && typeof b === 'number' && a > 0 && b > 0 && a * b === hidden) return a;
        }
      }
      if (['Reshape', 'Add', 'Transpose', 'Mul', 'Div'].includes(n.opType)) {
        for (const o of n.outputs) queue.push({ value: o, depth: depth + 1 });
      }
    }
  }
  return undefined;
}
