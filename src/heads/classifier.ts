import { ModtuneError } from '../errors.js';
import { DataType } from '../onnx/dtype.js';
import { Graph, Node } from '../onnx/graph.js';
import { makeTensor } from '../onnx/tensor.js';
import { Rng } from '../util/random.js';
import { Dense, matchDense } from './patterns.js';

/** Standard deviation of BERT's weight initialisation (`initializer_range`). */
export const INIT_STD = 0.02;

/**
 * A sequence-classification head found in a graph:
 * - BERT: pooler (encoder's) → `out`;
 * - RoBERTa/ELECTRA: [CLS] → `pre` (classifier.dense) → tanh/GELU → `out` (classifier.out_proj);
 * - DistilBERT: [CLS] → `pre` (pre_classifier) → ReLU → `out` (classifier).
 */
export interface TaskHead {
  /** The dense layer producing the logits. */
  out: Dense;
  /** The vector `out` reads. */
  pooled: string;
  /** The dense layer between [CLS] and `out`, when there is one. */
  pre?: Dense;
  /** Whether `pre` belongs to the head (true) or is BERT's pretrained pooler (false). */
  preIsHead: boolean;
}

/** Elementwise ops an activation between two dense layers is written with (tanh, ReLU, erf/tanh GELU). */
const ACTIVATION_OPS = new Set(['Tanh', 'Relu', 'Erf', 'Div', 'Mul', 'Add', 'Pow', 'Sqrt', 'Sigmoid', 'Gelu', 'FastGelu']);

/**
 * The model's own task head on the [CLS] vector `cls`, ending in the graph output named `logits` (or
 * the only output). Pre-training heads (MLM, NSP) sit beside other outputs under other names and are
 * not taken for a task head.
 */
export function findTaskHead(g: Graph, cls: string | undefined, consts: Set<string>): TaskHead | undefined {
  if (!cls) return undefined;
  const outputs = g.outputs.map((o) => o.name);
  const isTaskOutput = (v: string) => v === 'logits' || (outputs.length === 1 && outputs[0] === v);
  const denseInto = (v: string) => {
    for (const c of g.consumers(v)) {
      const d = matchDense(g, c, v, consts);
      if (d && isTaskOutput(d.output)) return d;
    }
    return undefined;
  };
  const direct = denseInto(cls);
  if (direct) return { out: direct, pooled: cls, preIsHead: false };
  for (const c of g.consumers(cls)) {
    const pre = matchDense(g, c, cls, consts);
    if (!pre) continue;
    for (const v of activationValues(g, pre.output, consts)) {
      const out = denseInto(v);
      if (out) return { out, pooled: v, pre, preIsHead: !/(^|[./])pooler[./]/.test(pre.weight.name) };
    }
  }
  return undefined;
}

/** Values computed from `start` through a small elementwise activation (constants aside). */
function activationValues(g: Graph, start: string, consts: Set<string>): string[] {
  const values = new Set<string>([start]);
  const found: string[] = [];
  const queue = [start];
  while (queue.length && found.length < 16) {
    const v = queue.shift()!;
    for (const c of g.consumers(v)) {
      if (!ACTIVATION_OPS.has(c.opType) || !c.inputs.every((i) => !i || values.has(i) || consts.has(i))) continue;
      for (const o of c.outputs) {
        if (!o || values.has(o)) continue;
        values.add(o);
        found.push(o);
        queue.push(o);
      }
    }
  }
  return found;
}

/** Overwrite a dense layer's parameters in place: weight normal(0, 0.02), bias 0 (BERT's init). */
export function reinitDense(g: Graph, d: Dense, rng: Rng): void {
  const w = g.initializers.get(d.weight.name)!;
  g.initializers.set(w.name, makeTensor(w.name, DataType.FLOAT, w.dims, normals(w.dims[0]! * w.dims[1]!, rng)));
  if (d.bias) {
    const b = g.initializers.get(d.bias);
    if (!b) throw new ModtuneError(`dense layer '${d.entry.name}': bias '${d.bias}' is not an initializer; cannot re-initialise it`);
    g.initializers.set(b.name, makeTensor(b.name, DataType.FLOAT, b.dims, new Float32Array(b.dims.reduce((a, x) => a * x, 1))));
  }
}

function normals(n: number, rng: Rng): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = rng.normal(0, INIT_STD);
  return out;
}

/**
 * Append a freshly initialised head `logits = pooled · Wᵀ + b` in the Hugging Face layout (W
 * [numLabels, hidden], read through Transpose → MatMul), W from normal(0, 0.02) and b = 0 as BERT
 * initialises its classifier. Names default to `classifier.weight` / `classifier.bias`.
 */
export function addClassifier(
  g: Graph,
  pooled: string,
  hidden: number,
  numLabels: number,
  rng: Rng,
  names = { weight: 'classifier.weight', bias: 'classifier.bias' },
): { nodes: Node[]; params: string[] } {
  const weight = g.addInitializer(makeTensor(names.weight, DataType.FLOAT, [numLabels, hidden], normals(numLabels * hidden, rng)));
  const bias = g.addInitializer(makeTensor(names.bias, DataType.FLOAT, [numLabels], new Float32Array(numLabels)));
  if (weight !== names.weight || bias !== names.bias) {
    throw new ModtuneError(`cannot add the classifier: the graph already uses the names '${names.weight}'/'${names.bias}' for something else`);
  }
  const t = g.addNode({ opType: 'Transpose', name: '/classifier/Transpose', inputs: [weight], attrs: { perm: { type: 'ints', value: [1, 0] } } });
  const mm = g.addNode({ opType: 'MatMul', name: '/classifier/MatMul', inputs: [pooled, t.outputs[0]!] });
  const add = g.addNode({ opType: 'Add', name: '/classifier/Add', inputs: [mm.outputs[0]!, bias], outputs: ['logits'] });
  return { nodes: [t, mm, add], params: [weight, bias] };
}

/**
 * Names for a replacement of `old`: its own when they are Hugging Face names (`….weight`/`….bias`),
 * else `classifier.weight`/`classifier.bias`.
 */
export function replacementNames(old: Dense): { weight: string; bias: string } {
  const w = old.weight.name;
  if (/^[\w.]+\.weight$/.test(w) && old.bias === w.replace(/weight$/, 'bias')) return { weight: w, bias: old.bias };
  return { weight: 'classifier.weight', bias: 'classifier.bias' };
}
