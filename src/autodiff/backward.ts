import { findErfGelus } from './patterns/erf-gelu.js';
import { geluGrad } from './rules/gelu.js';
import { ModtuneError } from '../errors.js';
import { dataTypeName } from '../onnx/dtype.js';
import { A, Graph, Node, ValueInfo } from '../onnx/graph.js';
import { newModel } from '../onnx/io.js';
import { inferShapes } from '../onnx/shapes.js';
import { makeTensor, numel } from '../onnx/tensor.js';
import { Emitter, RuleContext } from './context.js';
import { ValueFacts, isFloatType, numericDims } from './facts.js';
import { gradientRule, isNonDifferentiable } from './registry.js';

export interface BackwardRequest {
  /** Scalar (or one-element) float value to differentiate. */
  loss: string;
  /** Initializers or graph inputs to differentiate with respect to. */
  wrt: string[];
  /** Shapes of the forward values (from `inferShapes`); inferred here when absent. */
  shapes?: Map<string, ValueInfo>;
  /** Name of the initializer holding dL/dloss = 1 (default `<loss>_grad`, ORT's name for it). */
  seedName?: string;
  /** Opset the forward graph is written for (default 17). Emitted ops are valid at max(this, 17). */
  opset?: number;
}

export interface BackwardResult {
  /** wrt name → gradient value name (`<wrt>_grad` unless that name was taken). */
  gradients: Map<string, string>;
  /** The nodes appended to the graph. */
  nodes: Node[];
}

/**
 * Append nodes computing d(loss)/d(each wrt) to `graph` (reverse-mode, one rule per op).
 *
 * Backward work is emitted only for values that both depend on some `wrt` and reach the loss:
 * frozen weights get no gradient, and nothing is computed below the lowest trainable value.
 * Contributions to a value read by several nodes are summed. Forward nodes may gain optional
 * outputs the gradients reuse (Dropout's mask, LayerNormalization's mean and inverse std-dev).
 */
export function buildBackward(graph: Graph, req: BackwardRequest): BackwardResult {
  const sourceOpset = req.opset ?? 17;
  const producers = new Map<string, Node>();
  for (const n of graph.nodes) for (const o of n.outputs) if (o) producers.set(o, n);

  const isLeaf = (v: string) => graph.initializers.has(v) || graph.inputs.some((i) => i.name === v);
  if (!producers.has(req.loss) && !isLeaf(req.loss)) {
    throw new ModtuneError(`autodiff: loss '${req.loss}' is not a value of graph '${graph.name}'`);
  }
  const leaves = new Set([...graph.initializers.keys(), ...graph.inputs.map((i) => i.name)]);
  for (const w of req.wrt) {
    if (!leaves.has(w)) throw new ModtuneError(`autodiff: parameter '${w}' is not an initializer or input of graph '${graph.name}'`);
  }

  const shapes = req.shapes ?? inferShapes(newModel(graph, sourceOpset));
  const facts = new ValueFacts(graph, shapes, producers);
  checkLoss(facts, req.loss);
  for (const w of req.wrt) {
    if (!isFloatType(facts.dtype(w))) throw new ModtuneError(`autodiff: parameter '${w}' has type ${dataTypeName(facts.dtype(w))}; only float tensors have gradients`);
  }

  const order = ancestorsInOrder(req.loss, producers);
  // Values the loss depends on: the loss and every input of a node it depends on.
  const reachesLoss = new Set<string>([req.loss]);
  for (const n of order) for (const i of n.inputs) if (i) reachesLoss.add(i);

  // Values that depend on a wrt (through differentiable ops, float-typed), with one such wrt each
  // for error messages.
  const origin = new Map<string, string>();
  for (const w of req.wrt) origin.set(w, w);
  for (const n of order) {
    if (isNonDifferentiable(n.opType, n.domain)) continue;
    const from = n.inputs.find((i) => i && origin.has(i));
    if (!from) continue;
    for (const o of n.outputs) if (o && isFloatType(facts.dtype(o))) origin.set(o, origin.get(from)!);
  }
  const needed = (v: string) => !!v && origin.has(v) && reachesLoss.has(v);
  checkRulesExist(order, needed, origin, req.loss);

  const em = new Emitter(graph, facts, Math.max(sourceOpset, 17), sourceOpset, producers);
  const acc = new Accumulator(em);
  acc.contribute(req.loss, seed(em, req, facts));

  // Composite patterns whose backward needs only their input (see patterns/erf-gelu.ts).
  const consumers = new Map<string, Node[]>();
  for (const n of graph.nodes) for (const i of n.inputs) if (i) (consumers.get(i) ?? consumers.set(i, []).get(i)!).push(n);
  const geluByTail = new Map(findErfGelus(order, facts, producers, consumers).map((p) => [p.tail, p]));
  const covered = new Set<Node>();

  for (let k = order.length - 1; k >= 0; k--) {
    const n = order[k]!;
    if (covered.has(n)) continue;
    const gelu = geluByTail.get(n);
    if (gelu) {
      for (const m of gelu.interior) covered.add(m);
      const dy = acc.total(n.outputs[0]!);
      if (!dy || !needed(gelu.x)) continue;
      const asGelu: Node = { name: n.name, opType: 'Gelu', domain: '', inputs: [gelu.x], outputs: [n.outputs[0]!], attrs: { approximate: { type: 'string', value: 'none' } } };
      const [gx] = geluGrad(new RuleContext(em, asGelu, [dy], [true]));
      if (gx) acc.contribute(gelu.x, gx);
      continue;
    }
    const need = n.inputs.map(needed);
    if (!need.some(Boolean)) continue;
    const dys = n.outputs.map((o) => (o ? acc.total(o) : undefined));
    if (!dys.some(Boolean)) continue;
    if (isNonDifferentiable(n.opType, n.domain)) continue;
    const rule = gradientRule(n.opType, n.domain);
    if (!rule) throw missingRule(n, origin.get(n.inputs.find((i, j) => need[j])!)!);
    const grads = rule(new RuleContext(em, n, dys, need));
    grads.forEach((g, j) => {
      if (g && need[j]) acc.contribute(n.inputs[j]!, g);
    });
  }

  const gradients = new Map<string, string>();
  for (const w of req.wrt) {
    if (gradients.has(w)) continue;
    const name = graph.uniqueName(`${w}_grad`);
    gradients.set(w, acc.finish(w, name) ?? zerosNamed(em, w, name));
  }
  return { gradients, nodes: em.created };
}

/**
 * Every op the gradient flows through needs a rule. Checked before any rule runs: an op without one
 * (a custom-domain op, say) also leaves its outputs' shapes unknown, and a rule further down the
 * loss side would otherwise fail first with a message about an unknown rank instead of naming it.
 */
function checkRulesExist(order: Node[], needed: (v: string) => boolean, origin: Map<string, string>, loss: string): void {
  const flows = new Set([loss]); // values the loss's gradient reaches through differentiable ops
  for (let k = order.length - 1; k >= 0; k--) {
    const n = order[k]!;
    if (isNonDifferentiable(n.opType, n.domain) || !n.outputs.some((o) => o && flows.has(o))) continue;
    const j = n.inputs.findIndex((i) => needed(i));
    if (j < 0) continue;
    if (!gradientRule(n.opType, n.domain)) throw missingRule(n, origin.get(n.inputs[j]!)!);
    for (const i of n.inputs) if (needed(i)) flows.add(i);
  }
}

function missingRule(n: Node, parameter: string): ModtuneError {
  const op = n.domain && n.domain !== 'ai.onnx' ? `${n.domain}.${n.opType}` : n.opType;
  return new ModtuneError(`no gradient rule for op '${op}' (node '${n.name}') on the path to parameter '${parameter}'`);
}

function checkLoss(facts: ValueFacts, loss: string): void {
  const t = facts.dtype(loss);
  if (!isFloatType(t)) throw new ModtuneError(`autodiff: loss '${loss}' has type ${dataTypeName(t)}, expected a float scalar`);
  const dims = numericDims(facts.shape(loss));
  if (dims && numel(dims) !== 1) throw new ModtuneError(`autodiff: loss '${loss}' has shape [${dims.join(', ')}], expected a scalar or one element`);
}

/** dL/dloss = 1 as an initializer shaped like the loss (expanded at run time when that is unknown). */
function seed(em: Emitter, req: BackwardRequest, facts: ValueFacts): string {
  const name = em.graph.reserveName(req.seedName ?? `${req.loss}_grad`);
  const dims = numericDims(facts.shape(req.loss));
  em.graph.initializers.set(name, makeTensor(name, facts.dtype(req.loss), dims ?? [], [1]));
  if (dims) return name;
  const shape = em.node('Shape', [req.loss], { scope: `${req.loss}_Grad` }).outputs[0]!;
  return em.node('Expand', [name, shape], { scope: `${req.loss}_Grad` }).outputs[0]!;
}

/** Zeros for a parameter the loss does not depend on. */
function zerosNamed(em: Emitter, w: string, name: string): string {
  const dims = numericDims(em.facts.shape(w));
  const shape = dims ? em.int64s(dims) : em.node('Shape', [w], { scope: `${w}_grad` }).outputs[0]!;
  const zero = makeTensor('', em.facts.dtype(w), [1], [0]);
  return em.node('ConstantOfShape', [shape], { attrs: { value: A.tensor(zero) }, scope: `${w}_grad`, outputs: [name] }).outputs[0]!;
}

/**
 * The forward nodes the loss depends on, producers before consumers (iterative post-order DFS, so
 * it is linear and safe for deep graphs whatever order the node list is in).
 */
function ancestorsInOrder(loss: string, producers: Map<string, Node>): Node[] {
  const order: Node[] = [];
  const state = new Map<Node, 1 | 2>(); // 1 = on the stack, 2 = done
  const root = producers.get(loss);
  if (!root) return order;
  const stack: Array<{ node: Node; next: number }> = [{ node: root, next: 0 }];
  state.set(root, 1);
  while (stack.length) {
    const top = stack[stack.length - 1]!;
    if (top.next < top.node.inputs.length) {
      const p = producers.get(top.node.inputs[top.next++]!);
      if (!p) continue;
      const s = state.get(p);
      if (s === 1) throw new ModtuneError(`autodiff: graph has a cycle through node '${p.name}' (${p.opType})`);
      if (s === undefined) {
        state.set(p, 1);
        stack.push({ node: p, next: 0 });
      }
      continue;
    }
    state.set(top.node, 2);
    order.push(top.node);
    stack.pop();
  }
  return order;
}

/** Collects gradient contributions per forward value and sums them when the value is consumed. */
class Accumulator {
  private parts = new Map<string, string[]>();
  private totals = new Map<string, string>();

  constructor(private em: Emitter) {}

  contribute(v: string, g: string): void {
    let list = this.parts.get(v);
    if (!list) this.parts.set(v, (list = []));
    list.push(g);
  }

  /** The summed gradient of `v` (computed once), or undefined when nothing flows into it. */
  total(v: string): string | undefined {
    let t = this.totals.get(v);
    if (t === undefined) {
      const list = this.parts.get(v);
      if (!list) return undefined;
      t = this.sum(list, v);
      this.totals.set(v, t);
    }
    return t;
  }

  private sum(list: string[], v: string, out?: string): string {
    if (list.length === 1 && !out) return list[0]!;
    const outputs = out ? [out] : 1;
    const op = list.length === 2 ? 'Add' : 'Sum';
    if (list.length === 1) return this.em.node('Identity', list, { scope: `${v}_grad`, outputs }).outputs[0]!;
    return this.em.node(op, list, { scope: `${v}_grad`, outputs }).outputs[0]!;
  }

  /**
   * The final gradient of a parameter under the given name: the summing node writes it directly,
   * a single contribution made by a backward node nobody else reads is renamed, anything else
   * (a value shared with other gradients, the seed) goes through an Identity.
   */
  finish(w: string, name: string): string | undefined {
    const list = this.parts.get(w)?.map((g) => this.renamed.get(g) ?? g);
    if (!list) return undefined;
    if (list.length > 1) {
      const out = this.sum(list, w, name);
      this.finals.add(out);
      return out;
    }
    const g = list[0]!;
    const node = this.em.madeBy.get(g);
    if (node && !this.em.uses.get(g) && !this.finals.has(g)) {
      node.outputs[node.outputs.indexOf(g)] = name;
      this.em.madeBy.set(name, node);
      this.renamed.set(g, name);
      this.finals.add(name);
      this.em.graph.invalidate();
      return name;
    }
    const out = this.sum(list, w, name);
    this.finals.add(out);
    return out;
  }

  private finals = new Set<string>();
  /** Backward values given a parameter's gradient name by `finish`. */
  private renamed = new Map<string, string>();
}
