import { DataType } from '../onnx/dtype.js';
import { Graph, Node, attrInt, attrTensor } from '../onnx/graph.js';
import { Tensor, numel, tensorNumbers } from '../onnx/tensor.js';

/**
 * Graph pattern helpers shared by the head and dropout passes. They recognise the handful of shapes
 * that exporters give the same computation (a Linear layer, a LayerNorm, a constant).
 */

/** Values computable without any graph input: initializers, Constant outputs and what is derived from them only. */
export function constantValues(g: Graph): Set<string> {
  const consts = new Set<string>(g.initializers.keys());
  const inputs = new Set(g.inputs.map((i) => i.name));
  for (const name of inputs) consts.delete(name); // an initializer that is also an input can be overridden
  // Nodes may come in any order; iterate to a fixed point (usually one pass on sorted graphs).
  let changed = true;
  while (changed) {
    changed = false;
    for (const n of g.nodes) {
      if (n.outputs.every((o) => !o || consts.has(o))) continue;
      if (RANDOM_OPS.has(n.opType)) continue;
      if (n.inputs.every((i) => !i || consts.has(i))) {
        for (const o of n.outputs) if (o) consts.add(o);
        changed = true;
      }
    }
  }
  return consts;
}

const RANDOM_OPS = new Set(['RandomNormal', 'RandomUniform', 'RandomNormalLike', 'RandomUniformLike', 'Multinomial', 'Dropout']);

/** The tensor behind `value` when it is an initializer or a Constant node's `value`, looking through Identity. */
export function constantTensor(g: Graph, value: string): Tensor | undefined {
  for (let hops = 0; hops < 8; hops++) {
    const init = g.initializers.get(value);
    if (init && !g.isGraphInput(value)) return init;
    const p = g.producer(value);
    if (!p) return undefined;
    if (p.opType === 'Constant') return attrTensor(p, 'value');
    if (p.opType !== 'Identity') return undefined;
    value = p.inputs[0] ?? '';
  }
  return undefined;
}

/** A scalar (or one-element) integer/float constant's value. */
export function constantScalar(g: Graph, value: string): number | undefined {
  const t = constantTensor(g, value);
  if (!t || numel(t.dims) !== 1 || t.dataType === DataType.STRING) return undefined;
  return tensorNumbers(t)[0];
}

/**
 * A weight reaching a MatMul/Gemm: an initializer, possibly through Identity (deduplicated exports)
 * and one 2-D Transpose (training-mode exports keep the [out, in] layout and transpose in-graph).
 */
export interface WeightRef {
  /** Initializer name. */
  name: string;
  /** Stored dims. */
  dims: number[];
  /** true when the stored tensor is [out, in] (Hugging Face layout). */
  outFirst: boolean;
  /** Transpose/Identity nodes between the initializer and its consumer. */
  via: Node[];
}

function weightOperand(g: Graph, value: string, consumerTransposesB: boolean): WeightRef | undefined {
  const via: Node[] = [];
  let transposed = consumerTransposesB;
  for (let hops = 0; hops < 4; hops++) {
    const init = g.initializers.get(value);
    if (init && !g.isGraphInput(value)) {
      if (init.dims.length !== 2) return undefined;
      return { name: value, dims: init.dims, outFirst: transposed, via };
    }
    const p = g.producer(value);
    if (!p) return undefined;
    if (p.opType === 'Identity') {
      via.push(p);
    } else if (p.opType === 'Transpose') {
      const perm = p.attrs.perm;
      if (perm && !(perm.type === 'ints' && perm.value.length === 2 && perm.value[0] === 1 && perm.value[1] === 0)) return undefined;
      via.push(p);
      transposed = !transposed;
    } else {
      return undefined;
    }
    value = p.inputs[0] ?? '';
  }
  return undefined;
}

/** A fully connected layer `x W^T + b` as some exporter wrote it. */
export interface Dense {
  input: string;
  output: string;
  /** Nodes of the layer proper (MatMul/Gemm and the bias Add), not the weight's Transpose/Identity. */
  nodes: Node[];
  /** The node that reads `input`. */
  entry: Node;
  weight: WeightRef;
  bias?: string;
  inFeatures: number;
  outFeatures: number;
}

/**
 * The dense layer whose first node is `n` reading `input`, or undefined. Accepts Gemm (transA=0),
 * and MatMul followed by an Add of a 1-D constant bias.
 */
export function matchDense(g: Graph, n: Node, input: string, consts: Set<string>): Dense | undefined {
  if (n.opType === 'Gemm' && n.domain === '' && n.inputs[0] === input) {
    if (attrInt(n, 'transA', 0) !== 0) return undefined;
    const weight = weightOperand(g, n.inputs[1] ?? '', attrInt(n, 'transB', 0) === 1);
    if (!weight) return undefined;
    const [outF, inF] = weight.outFirst ? weight.dims : [weight.dims[1]!, weight.dims[0]!];
    const bias = n.inputs[2] || undefined;
    return { input, output: n.outputs[0]!, nodes: [n], entry: n, weight, bias, inFeatures: inF!, outFeatures: outF! };
  }
  if (n.opType === 'MatMul' && n.domain === '' && n.inputs[0] === input) {
    const weight = weightOperand(g, n.inputs[1] ?? '', false);
    if (!weight) return undefined;
    const [outF, inF] = weight.outFirst ? weight.dims : [weight.dims[1]!, weight.dims[0]!];
    const mm = n.outputs[0]!;
    const adds = g.consumers(mm);
    if (adds.length === 1 && adds[0]!.opType === 'Add') {
      const add = adds[0]!;
      const other = add.inputs[0] === mm ? add.inputs[1] : add.inputs[0];
      const t = other ? constantTensor(g, other) : undefined;
      if (other && consts.has(other) && t && numel(t.dims) === outF) {
        return { input, output: add.outputs[0]!, nodes: [n, add], entry: n, weight, bias: other, inFeatures: inF!, outFeatures: outF! };
      }
    }
    return { input, output: mm, nodes: [n], entry: n, weight, inFeatures: inF!, outFeatures: outF! };
  }
  return undefined;
}

/**
 * Whether `value` is the output of a dense projection: a bias Add over a MatMul (directly or through
 * the Reshape of TensorFlow's Tensordot), a Gemm, or a bare MatMul with a constant weight.
 */
export function isDenseOutput(g: Graph, value: string, consts: Set<string>): boolean {
  const p = g.producer(value);
  if (!p) return false;
  if (p.opType === 'Gemm') return true;
  const fromMatMul = (v: string | undefined): boolean => {
    if (!v) return false;
    let q = g.producer(v);
    if (q?.opType === 'Reshape') q = g.producer(q.inputs[0] ?? '');
    return q?.opType === 'MatMul' && consts.has(q.inputs[1] ?? '');
  };
  if (p.opType === 'Add') {
    const [a, b] = p.inputs;
    return (consts.has(b ?? '') && fromMatMul(a)) || (consts.has(a ?? '') && fromMatMul(b));
  }
  return fromMatMul(value);
}

// ---- LayerNorm ---------------------------------------------------------------------------------

export interface LayerNorm {
  input: string;
  output: string;
  nodes: Node[];
  /** Width of the normalised axis (from the scale/bias constants), when known. */
  hidden?: number;
}

/** Ops a decomposed LayerNorm is written with by torch (eval/training), TF/keras2onnx and older exporters. */
const LN_OPS = new Set(['ReduceMean', 'Sub', 'Pow', 'Mul', 'Add', 'Sqrt', 'Div', 'Reciprocal']);

/**
 * Every LayerNorm in the graph, fused (LayerNormalization) or decomposed. A decomposed one starts at a
 * ReduceMean(x) whose result is subtracted from x; the region grows over elementwise ops all of whose
 * inputs are x, region values or constants, and must end in exactly one value read outside it.
 */
export function findLayerNorms(g: Graph, consts: Set<string>): LayerNorm[] {
  const out: LayerNorm[] = [];
  const seen = new Set<string>();
  for (const n of g.nodes) {
    if (n.opType === 'LayerNormalization' && (n.domain === '' || n.domain === 'com.microsoft')) {
      const scale = n.inputs[1] ? constantTensor(g, n.inputs[1]) : undefined;
      out.push({ input: n.inputs[0]!, output: n.outputs[0]!, nodes: [n], hidden: scale ? numel(scale.dims) : undefined });
      continue;
    }
    if (n.opType !== 'ReduceMean') continue;
    const x = n.inputs[0];
    if (!x || consts.has(x)) continue;
    const mean = n.outputs[0]!;
    if (!g.consumers(x).some((c) => c.opType === 'Sub' && c.inputs[0] === x && c.inputs[1] === mean)) continue;
    const ln = growLayerNorm(g, n, x, consts);
    if (ln && !seen.has(ln.output)) {
      seen.add(ln.output);
      out.push(ln);
    }
  }
  return out;
}

function growLayerNorm(g: Graph, start: Node, x: string, consts: Set<string>): LayerNorm | undefined {
  const region = new Set<Node>([start]);
  const values = new Set<string>([x, start.outputs[0]!]);
  let changed = true;
  while (changed) {
    changed = false;
    for (const v of [...values]) {
      for (const c of g.consumers(v)) {
        if (region.has(c) || !LN_OPS.has(c.opType) || c.domain !== '') continue;
        if (!c.inputs.every((i) => !i || values.has(i) || consts.has(i))) continue;
        region.add(c);
        for (const o of c.outputs) if (o) values.add(o);
        changed = true;
      }
    }
    if (region.size > 40) return undefined; // not a LayerNorm: runaway growth through elementwise ops
  }
  const count = (op: string) => [...region].filter((r) => r.opType === op).length;
  if (count('ReduceMean') < 2 || count('Sqrt') + count('Pow') < 1 || count('Div') + count('Reciprocal') < 1) return undefined;
  const exits = new Set<string>();
  for (const r of region) {
    for (const o of r.outputs) {
      if (!o) continue;
      if (g.isGraphOutput(o) || g.consumers(o).some((c) => !region.has(c))) exits.add(o);
    }
  }
  if (exits.size !== 1) return undefined;
  let hidden: number | undefined;
  for (const r of region) {
    for (const i of r.inputs) {
      if (!i || !consts.has(i)) continue;
      const t = constantTensor(g, i);
      if (t && t.dims.length === 1 && t.dims[0]! > 1) hidden ??= t.dims[0];
    }
  }
  const nodes = g.nodes.filter((n) => region.has(n));
  return { input: x, output: [...exits][0]!, nodes, hidden };
}
