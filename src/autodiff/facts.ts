import { DataType } from '../onnx/dtype.js';
import { Dim, Graph, Node, ValueInfo, attrTensor } from '../onnx/graph.js';
import { Tensor, tensorNumbers } from '../onnx/tensor.js';

/** Element types whose values carry gradients. */
export function isFloatType(t: DataType | undefined): boolean {
  return t === DataType.FLOAT || t === DataType.DOUBLE || t === DataType.FLOAT16 || t === DataType.BFLOAT16;
}

/**
 * What is statically known about the forward values: element type, shape (from shape inference)
 * and the contents of constant integer tensors (initializers and Constant nodes), which rules read
 * for axes, perms and slice bounds.
 */
export class ValueFacts {
  private constNodes = new Map<string, Node>();

  constructor(
    private graph: Graph,
    private shapes: Map<string, ValueInfo>,
    private producers: Map<string, Node>,
  ) {
    for (const n of graph.nodes) if (n.opType === 'Constant' && n.outputs[0]) this.constNodes.set(n.outputs[0], n);
  }

  /** Element type of a value; falls back to the producer's first input for values inference missed. */
  dtype(v: string): DataType {
    const seen = new Set<string>();
    let cur = v;
    for (;;) {
      const known = this.shapes.get(cur)?.elemType ?? this.graph.initializers.get(cur)?.dataType
        ?? this.graph.inputs.find((i) => i.name === cur)?.elemType ?? this.graph.valueInfo.get(cur)?.elemType;
      if (known) return known;
      const p = this.producers.get(cur);
      if (!p || seen.has(cur) || !p.inputs[0]) return DataType.UNDEFINED;
      seen.add(cur);
      cur = p.inputs[0];
    }
  }

  /** Dims (numbers, symbolic names, null) or undefined when the rank is unknown. */
  shape(v: string): Dim[] | undefined {
    const t = this.graph.initializers.get(v);
    if (t) return [...t.dims];
    return this.shapes.get(v)?.shape ?? this.graph.valueInfo.get(v)?.shape;
  }

  rank(v: string): number | undefined {
    return this.shape(v)?.length;
  }

  /** The constant tensor behind a value (initializer or Constant node with a `value` tensor). */
  constTensor(v: string): Tensor | undefined {
    if (!v) return undefined;
    const t = this.graph.initializers.get(v);
    if (t) return this.graph.isGraphInput(v) ? undefined : t; // an input with a default can be overridden
    const n = this.constNodes.get(v);
    return n ? attrTensor(n, 'value') : undefined;
  }

  /** Contents of a constant tensor as numbers, or undefined when the value is not constant. */
  constNumbers(v: string): number[] | undefined {
    const t = this.constTensor(v);
    if (t) return tensorNumbers(t);
    const n = this.constNodes.get(v);
    const a = n && (n.attrs.value_int ?? n.attrs.value_ints ?? n.attrs.value_float ?? n.attrs.value_floats);
    if (!a) return undefined;
    if (a.type === 'int' || a.type === 'float') return [a.value];
    if (a.type === 'ints' || a.type === 'floats') return [...a.value];
    return undefined;
  }
}

/** Static numeric dims, or undefined when any dim is symbolic/unknown. */
export function numericDims(s: Dim[] | undefined): number[] | undefined {
  if (!s || s.some((d) => typeof d !== 'number')) return undefined;
  return s as number[];
}
