import { ModtuneError } from '../errors.js';
import { DataType } from './dtype.js';
import type { Tensor } from './tensor.js';

/** A node attribute. Integers are JS numbers (int64 extremes saturate when written back). */
export type Attr =
  | { type: 'float'; value: number }
  | { type: 'int'; value: number }
  | { type: 'string'; value: string }
  | { type: 'tensor'; value: Tensor }
  | { type: 'floats'; value: number[] }
  | { type: 'ints'; value: number[] }
  | { type: 'strings'; value: string[] }
  /** Sub-graphs (If/Loop bodies) are carried through untouched as decoded protobuf objects. */
  | { type: 'graph'; value: unknown };

export interface Node {
  name: string;
  opType: string;
  /** '' or 'ai.onnx' for the standard domain. */
  domain: string;
  /** '' marks an omitted optional input. */
  inputs: string[];
  outputs: string[];
  attrs: Record<string, Attr>;
  docString?: string;
}

/** A dimension: a number, a symbolic name, or null when unknown. */
export type Dim = number | string | null;

export interface ValueInfo {
  name: string;
  elemType: DataType;
  /** undefined: rank unknown. */
  shape?: Dim[];
  /** A sequence of tensors of `elemType` (e.g. an optimizer graph's parameter list); `shape` is that of the elements. */
  sequence?: boolean;
  docString?: string;
}

export interface OpsetImport {
  domain: string;
  version: number;
}

export interface Model {
  irVersion: number;
  opsetImports: OpsetImport[];
  producerName: string;
  producerVersion: string;
  domain: string;
  modelVersion: number;
  docString: string;
  metadata: Record<string, string>;
  graph: Graph;
  /** Model-local functions, carried through as decoded protobuf objects. */
  functions?: unknown[];
  /** External-data files (locations relative to the model's folder) the loaded model read. */
  externalDataFiles?: string[];
}

export function opsetVersion(model: Model, domain = ''): number | undefined {
  const d = domain === 'ai.onnx' ? '' : domain;
  return model.opsetImports.find((o) => (o.domain === 'ai.onnx' ? '' : o.domain) === d)?.version;
}

/** `n` is the standard ONNX operator `opType` (default domain, '' or 'ai.onnx'), not a contrib op of that name. */
export function isOnnxOp(n: Node | undefined, opType: string): n is Node {
  return !!n && n.opType === opType && (n.domain === '' || n.domain === 'ai.onnx');
}

// ---- attribute helpers ---------------------------------------------------------------------

export function attrInt(node: Node, name: string, dflt: number): number;
export function attrInt(node: Node, name: string): number | undefined;
export function attrInt(node: Node, name: string, dflt?: number): number | undefined {
  const a = node.attrs[name];
  if (!a) return dflt;
  if (a.type !== 'int') throw new ModtuneError(`node '${node.name}' (${node.opType}): attribute '${name}' should be an int, got ${a.type}`);
  return a.value;
}

export function attrFloat(node: Node, name: string, dflt: number): number {
  const a = node.attrs[name];
  if (!a) return dflt;
  if (a.type === 'float' || a.type === 'int') return a.value;
  throw new ModtuneError(`node '${node.name}' (${node.opType}): attribute '${name}' should be a float, got ${a.type}`);
}

export function attrInts(node: Node, name: string): number[] | undefined {
  const a = node.attrs[name];
  if (!a) return undefined;
  if (a.type !== 'ints') throw new ModtuneError(`node '${node.name}' (${node.opType}): attribute '${name}' should be ints, got ${a.type}`);
  return a.value;
}

export function attrString(node: Node, name: string, dflt: string): string {
  const a = node.attrs[name];
  if (!a) return dflt;
  if (a.type !== 'string') throw new ModtuneError(`node '${node.name}' (${node.opType}): attribute '${name}' should be a string, got ${a.type}`);
  return a.value;
}

export function attrTensor(node: Node, name: string): Tensor | undefined {
  const a = node.attrs[name];
  if (!a) return undefined;
  if (a.type !== 'tensor') throw new ModtuneError(`node '${node.name}' (${node.opType}): attribute '${name}' should be a tensor, got ${a.type}`);
  return a.value;
}

export const A = {
  int: (value: number): Attr => ({ type: 'int', value }),
  float: (value: number): Attr => ({ type: 'float', value }),
  ints: (value: number[]): Attr => ({ type: 'ints', value }),
  floats: (value: number[]): Attr => ({ type: 'floats', value }),
  string: (value: string): Attr => ({ type: 'string', value }),
  tensor: (value: Tensor): Attr => ({ type: 'tensor', value }),
};

// ---- the graph ------------------------------------------------------------------------------

/**
 * A mutable ONNX graph with the queries later stages need. Producer/consumer indexes are rebuilt
 * lazily after any mutation through these methods; code that edits `nodes` directly must call
 * `invalidate()`.
 */
export class Graph {
  name = 'graph';
  docString = '';
  nodes: Node[] = [];
  initializers = new Map<string, Tensor>();
  inputs: ValueInfo[] = [];
  outputs: ValueInfo[] = [];
  valueInfo = new Map<string, ValueInfo>();

  private producerIndex?: Map<string, Node>;
  private consumerIndex?: Map<string, Node[]>;
  private usedNames?: Set<string>;
  private nameCounter = 0;

  invalidate(): void {
    this.producerIndex = undefined;
    this.consumerIndex = undefined;
  }

  private buildIndex(): void {
    const prod = new Map<string, Node>();
    const cons = new Map<string, Node[]>();
    for (const n of this.nodes) {
      for (const o of n.outputs) if (o) prod.set(o, n);
      for (const i of n.inputs) {
        if (!i) continue;
        let list = cons.get(i);
        if (!list) cons.set(i, (list = []));
        if (!list.includes(n)) list.push(n);
      }
    }
    this.producerIndex = prod;
    this.consumerIndex = cons;
  }

  /** The node that outputs `value`, or undefined for graph inputs, initializers and unknowns. */
  producer(value: string): Node | undefined {
    if (!this.producerIndex) this.buildIndex();
    return this.producerIndex!.get(value);
  }

  /** Nodes that read `value`, in graph order. */
  /** Every node `value` is computed from (its producer, that node's producers, and so on). */
  ancestors(value: string): Set<Node> {
    const nodes = new Set<Node>();
    const seen = new Set<string>();
    const stack = [value];
    while (stack.length) {
      const v = stack.pop()!;
      if (seen.has(v)) continue;
      seen.add(v);
      const p = this.producer(v);
      if (!p || nodes.has(p)) continue;
      nodes.add(p);
      for (const i of p.inputs) if (i) stack.push(i);
    }
    return nodes;
  }

  consumers(value: string): Node[] {
    if (!this.consumerIndex) this.buildIndex();
    return this.consumerIndex!.get(value) ?? [];
  }

  isGraphInput(name: string): boolean {
    return this.inputs.some((v) => v.name === name);
  }

  isGraphOutput(name: string): boolean {
    return this.outputs.some((v) => v.name === name);
  }

  getInitializer(name: string): Tensor | undefined {
    return this.initializers.get(name);
  }

  /** Every name in use: values, nodes, initializers, inputs, outputs. */
  private names(): Set<string> {
    if (!this.usedNames) {
      const s = new Set<string>();
      for (const n of this.nodes) {
        if (n.name) s.add(n.name);
        for (const v of n.inputs) if (v) s.add(v);
        for (const v of n.outputs) if (v) s.add(v);
      }
      for (const k of this.initializers.keys()) s.add(k);
      for (const v of this.inputs) s.add(v.name);
      for (const v of this.outputs) s.add(v.name);
      for (const k of this.valueInfo.keys()) s.add(k);
      this.usedNames = s;
    }
    return this.usedNames;
  }

  /** A name not yet used anywhere in the graph, derived from `base`. Reserves it. */
  uniqueName(base: string): string {
    const used = this.names();
    let name = base;
    while (used.has(name)) name = `${base}_${++this.nameCounter}`;
    used.add(name);
    return name;
  }

  /** Reserve a name that the caller must own (e.g. a fixed contract name); error if it is taken. */
  reserveName(name: string): string {
    const used = this.names();
    if (used.has(name)) throw new ModtuneError(`graph '${this.name}': name '${name}' is already in use`);
    used.add(name);
    return name;
  }

  /**
   * Append a node. Missing `name` gets a unique one from the op type; `outputs` given as a number
   * creates that many fresh value names. Returns the node.
   */
  addNode(spec: {
    opType: string;
    inputs: string[];
    outputs?: string[] | number;
    name?: string;
    domain?: string;
    attrs?: Record<string, Attr>;
  }): Node {
    const name = this.uniqueName(spec.name ?? spec.opType);
    const outs = typeof spec.outputs === 'number' || spec.outputs === undefined
      ? Array.from({ length: (spec.outputs as number | undefined) ?? 1 }, (_, i) => this.uniqueName(`${name}_out${i}`))
      : spec.outputs.map((o) => { this.names().add(o); return o; });
    const node: Node = { name, opType: spec.opType, domain: spec.domain ?? '', inputs: spec.inputs, outputs: outs, attrs: spec.attrs ?? {} };
    this.nodes.push(node);
    this.invalidate();
    return node;
  }

  /** Add a constant; its name is made unique from `tensor.name`. Returns the name used. */
  addInitializer(tensor: Tensor): string {
    const name = this.uniqueName(tensor.name);
    this.initializers.set(name, name === tensor.name ? tensor : { ...tensor, name });
    return name;
  }

  /** Replace every use of value `from` (node inputs and graph outputs) with `to`. */
  replaceUses(from: string, to: string): void {
    for (const n of this.nodes) for (let i = 0; i < n.inputs.length; i++) if (n.inputs[i] === from) n.inputs[i] = to;
    this.invalidate();
  }

  removeNodes(dead: Iterable<Node>): void {
    const set = new Set(dead);
    this.nodes = this.nodes.filter((n) => !set.has(n));
    this.invalidate();
  }

  /**
   * Drop nodes whose outputs reach no graph output, then initializers nobody reads.
   * Returns how many nodes were removed.
   */
  removeDeadNodes(): number {
    const live = new Set<string>(this.outputs.map((o) => o.name));
    const keep = new Set<Node>();
    for (let i = this.nodes.length - 1; i >= 0; i--) {
      const n = this.nodes[i]!;
      if (n.outputs.some((o) => live.has(o))) {
        keep.add(n);
        for (const x of n.inputs) if (x) live.add(x);
      }
    }
    // Nodes may be out of order; iterate to a fixed point.
    let changed = true;
    while (changed) {
      changed = false;
      for (const n of this.nodes) {
        if (!keep.has(n) && n.outputs.some((o) => live.has(o))) {
          keep.add(n);
          for (const x of n.inputs) if (x) live.add(x);
          changed = true;
        }
      }
    }
    const before = this.nodes.length;
    this.nodes = this.nodes.filter((n) => keep.has(n));
    for (const k of [...this.initializers.keys()]) if (!live.has(k)) this.initializers.delete(k);
    this.invalidate();
    this.usedNames = undefined;
    return before - this.nodes.length;
  }

  /** Sort nodes so that every node comes after the producers of its inputs (stable). */
  topologicalSort(): void {
    const available = new Set<string>([...this.initializers.keys(), ...this.inputs.map((i) => i.name), '']);
    const pending = new Map<Node, number>();
    const waiting = new Map<string, Node[]>();
    const producers = new Set<string>();
    for (const n of this.nodes) for (const o of n.outputs) producers.add(o);
    const ready: Node[] = [];
    for (const n of this.nodes) {
      let count = 0;
      for (const i of new Set(n.inputs)) {
        if (available.has(i) || !producers.has(i)) continue;
        count++;
        let w = waiting.get(i);
        if (!w) waiting.set(i, (w = []));
        w.push(n);
      }
      pending.set(n, count);
      if (count === 0) ready.push(n);
    }
    const order = new Map(this.nodes.map((n, i) => [n, i]));
    const out: Node[] = [];
    // Min-heap by original index would be ideal; a sorted ready list keeps original order stable.
    while (ready.length) {
      ready.sort((a, b) => order.get(b)! - order.get(a)!);
      const n = ready.pop()!;
      out.push(n);
      for (const o of n.outputs) {
        for (const c of waiting.get(o) ?? []) {
          const left = pending.get(c)! - 1;
          pending.set(c, left);
          if (left === 0) ready.push(c);
        }
        waiting.delete(o);
      }
    }
    if (out.length !== this.nodes.length) {
      const stuck = this.nodes.find((n) => !out.includes(n))!;
      throw new ModtuneError(`graph '${this.name}' has a cycle or an undefined input at node '${stuck.name}' (${stuck.opType})`);
    }
    this.nodes = out;
    this.invalidate();
  }

  /** A copy whose node/value lists can be edited freely; tensors are shared (treat them as immutable). */
  clone(): Graph {
    const g = new Graph();
    g.name = this.name;
    g.docString = this.docString;
    g.nodes = this.nodes.map((n) => ({ ...n, inputs: [...n.inputs], outputs: [...n.outputs], attrs: { ...n.attrs } }));
    g.initializers = new Map(this.initializers);
    g.inputs = this.inputs.map((v) => ({ ...v, shape: v.shape && [...v.shape] }));
    g.outputs = this.outputs.map((v) => ({ ...v, shape: v.shape && [...v.shape] }));
    g.valueInfo = new Map([...this.valueInfo].map(([k, v]) => [k, { ...v, shape: v.shape && [...v.shape] }]));
    return g;
  }
}

export function cloneModel(m: Model): Model {
  return { ...m, opsetImports: m.opsetImports.map((o) => ({ ...o })), metadata: { ...m.metadata }, graph: m.graph.clone() };
}
