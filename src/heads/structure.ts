import { ModtuneError } from '../errors.js';
import { Graph, Node, attrInt, attrInts } from '../onnx/graph.js';
import { tensorNumbers } from '../onnx/tensor.js';
import { Dense, LayerNorm, constantScalar, constantTensor, findLayerNorms, isDenseOutput, matchDense } from './patterns.js';

/** One residual connection of an encoder layer: `Add(denseOutput, skip)` feeding a LayerNorm. */
export interface Residual {
  add: Node;
  /** Output of the dense projection (attention output or FFN output) before the Add. */
  denseOutput: string;
  layerNorm: LayerNorm;
  kind: 'attention' | 'ffn';
}

/** Where the pieces of a BERT-like encoder sit in a graph. */
export interface EncoderStructure {
  embeddingsLayerNorm: LayerNorm;
  residuals: Residual[];
  numLayers: number;
  hiddenSize: number;
  /** Final encoder hidden state [batch, sequence, hidden]. */
  lastHidden: string;
  /** [CLS] vector [batch, hidden], when the graph already extracts it. */
  cls?: string;
  /** BERT's pooler, tanh(dense([CLS])), when the graph has one. */
  pooler?: { dense: Dense; activation: Node; output: string };
  /** Attention Softmax nodes, in graph order. */
  softmaxes: Node[];
}

const WHAT_WE_LOOK_FOR =
  'expected an embeddings LayerNorm (LayerNormalization, or ReduceMean/Sub/Pow/Sqrt/Div) over embedding Gathers, ' +
  'followed by encoder layers of residual Add(dense output, hidden) → LayerNorm';

/** Locate the encoder of a BERT-family graph; a ModtuneError says what was missing. */
export function findEncoder(g: Graph, consts: Set<string>, label: string): EncoderStructure {
  const norms = findLayerNorms(g, consts);
  if (norms.length === 0) throw new ModtuneError(`${label}: no BERT structure: found no LayerNorm; ${WHAT_WE_LOOK_FOR}`);
  const byInput = new Map<string, LayerNorm>();
  for (const ln of norms) byInput.set(ln.input, ln);

  const order = new Map(g.nodes.map((n, i) => [n, i]));
  const first = (ln: LayerNorm) => Math.min(...ln.nodes.map((n) => order.get(n) ?? Infinity));
  const embeddings = norms.filter((ln) => readsEmbeddingTable(g, ln.input, consts)).sort((a, b) => first(a) - first(b))[0];
  if (!embeddings) {
    throw new ModtuneError(`${label}: no BERT structure: none of the ${norms.length} LayerNorm(s) normalises embedding lookups (Gather from a 2-D table); ${WHAT_WE_LOOK_FOR}`);
  }

  const residuals: Residual[] = [];
  let hidden = embeddings.output;
  for (;;) {
    let next = nextResidual(g, hidden, byInput, consts);
    if (!next && residuals.length === 0) {
      // ELECTRA with embedding_size != hidden_size projects the embeddings before the first layer.
      const readers = g.consumers(hidden);
      const project = readers.length === 1 ? matchDense(g, readers[0]!, hidden, consts) : undefined;
      if (project) {
        next = nextResidual(g, project.output, byInput, consts);
        if (next) hidden = project.output;
      }
    }
    if (!next) break;
    residuals.push({ ...next, kind: residuals.length % 2 === 0 ? 'attention' : 'ffn' });
    hidden = next.layerNorm.output;
    if (residuals.length > 4096) throw new ModtuneError(`${label}: encoder residual chain does not end`);
  }
  if (residuals.length === 0) {
    throw new ModtuneError(`${label}: no BERT structure: the embeddings LayerNorm is not followed by any encoder layer; ${WHAT_WE_LOOK_FOR}`);
  }

  const hiddenSize = residuals[residuals.length - 1]!.layerNorm.hidden ?? embeddings.hidden;
  if (!hiddenSize) throw new ModtuneError(`${label}: cannot tell the hidden size: LayerNorm at '${embeddings.output}' has no constant scale/bias`);

  const encoderNodes = g.ancestors(hidden);
  const softmaxes = g.nodes.filter((n) => n.opType === 'Softmax' && encoderNodes.has(n));

  const cls = findClsVector(g, hidden, consts);
  let pooler: EncoderStructure['pooler'];
  if (cls) {
    for (const c of g.consumers(cls)) {
      const dense = matchDense(g, c, cls, consts);
      const acts = dense ? g.consumers(dense.output) : [];
      if (dense && acts.length === 1 && acts[0]!.opType === 'Tanh') {
        pooler = { dense, activation: acts[0]!, output: acts[0]!.outputs[0]! };
        break;
      }
    }
  }
  return {
    embeddingsLayerNorm: embeddings,
    residuals,
    numLayers: Math.floor(residuals.length / 2),
    hiddenSize,
    lastHidden: hidden,
    cls,
    pooler,
    softmaxes,
  };
}

/** true when `value` is computed (through any ops) from a Gather on a 2-D constant table. */
function readsEmbeddingTable(g: Graph, value: string, consts: Set<string>): boolean {
  const seen = new Set<string>();
  const stack = [value];
  while (stack.length) {
    const v = stack.pop()!;
    if (seen.has(v) || consts.has(v)) continue;
    seen.add(v);
    if (seen.size > 200) return false; // embeddings sit a few ops above their LayerNorm
    const p = g.producer(v);
    if (!p) continue;
    if (p.opType === 'Gather' && consts.has(p.inputs[0] ?? '')) {
      const t = constantTensor(g, p.inputs[0]!);
      if (t && t.dims.length === 2 && attrInt(p, 'axis', 0) === 0) return true;
    }
    if (p.opType === 'LayerNormalization' || p.opType === 'Softmax') continue; // don't walk into another block
    for (const i of p.inputs) if (i) stack.push(i);
  }
  return false;
}

/** The residual Add reading `hidden` together with a dense projection, and the LayerNorm it feeds. */
function nextResidual(
  g: Graph,
  hidden: string,
  byInput: Map<string, LayerNorm>,
  consts: Set<string>,
): Omit<Residual, 'kind'> | undefined {
  for (const add of g.consumers(hidden)) {
    if (add.opType !== 'Add' || add.inputs.length !== 2) continue;
    const other = add.inputs[0] === hidden ? add.inputs[1]! : add.inputs[0]!;
    if (other === hidden || !isDenseOutput(g, other, consts)) continue;
    const layerNorm = byInput.get(add.outputs[0]!);
    if (layerNorm) return { add, denseOutput: other, layerNorm };
  }
  return undefined;
}

/**
 * The [CLS] vector [batch, hidden] taken from the final hidden state: Gather(axis=1, index 0), or
 * Slice(axis 1, [0:1]) followed by Squeeze/Reshape/Flatten.
 */
function findClsVector(g: Graph, hidden: string, consts: Set<string>): string | undefined {
  for (const c of g.consumers(hidden)) {
    if (c.opType === 'Gather' && c.inputs[0] === hidden && attrInt(c, 'axis', 0) === 1) {
      const idx = constantTensor(g, c.inputs[1] ?? '');
      if (idx && idx.dims.length === 0 && constantScalar(g, c.inputs[1]!) === 0) return c.outputs[0];
    }
    if (c.opType === 'Slice' && c.inputs[0] === hidden && isFirstTokenSlice(g, c, consts)) {
      const next = g.consumers(c.outputs[0]!);
      const sq = next.find((n) => n.opType === 'Squeeze' || n.opType === 'Reshape' || n.opType === 'Flatten');
      if (sq && next.length === 1) return sq.outputs[0];
    }
  }
  return undefined;
}

function isFirstTokenSlice(g: Graph, s: Node, consts: Set<string>): boolean {
  const nums = (i: number): number[] | undefined => {
    const name = s.inputs[i];
    if (!name || !consts.has(name)) return undefined;
    const t = constantTensor(g, name);
    return t ? tensorNumbers(t) : undefined;
  };
  // Slice-10+: inputs (data, starts, ends, axes?, steps?); Slice-1: attributes.
  const starts = s.inputs.length > 1 ? nums(1) : attrInts(s, 'starts');
  const ends = s.inputs.length > 2 ? nums(2) : attrInts(s, 'ends');
  const axes = s.inputs.length > 3 ? nums(3) : attrInts(s, 'axes');
  if (!starts || !ends) return false;
  const ax = axes ?? starts.map((_, i) => i);
  for (let i = 0; i < ax.length; i++) {
    if (ax[i] === 1 || ax[i] === -2) return starts[i] === 0 && ends[i] === 1;
  }
  return false;
}
