import { ModtuneError } from '../errors.js';
import { DataType } from './dtype.js';
import { Dim, Graph, Model, Node, ValueInfo, attrFloat, attrInt, attrInts, attrString, attrTensor, opsetVersion } from './graph.js';
import { Tensor, numel, tensorNumbers } from './tensor.js';

/**
 * Shape inference for BERT-family graphs with symbolic batch/sequence axes.
 *
 * Besides shapes, small integer tensors are tracked by value ("shape values"), element by element,
 * where an element may be a number, a symbolic dimension name, or null. Exporters compute Reshape
 * and Expand targets at run time (Shape → Gather → Unsqueeze → Concat ...); following those values
 * symbolically is what gives Reshape/Expand/ConstantOfShape/Slice outputs their ranks and dims.
 *
 * Symbolic dims are products of a coefficient and names ("batch", "12*seq", "batch*seq"): enough
 * for the reshapes transformers do (merge/split heads, flatten batch×sequence) without a full
 * algebra system. Anything we cannot derive is null (dim) or undefined (rank); we never guess.
 */

/** Tensors up to this many elements are followed by value. */
const MAX_TRACKED_ELEMENTS = 64;
/** Slice bounds at or beyond this magnitude mean "to the end" (exporters use INT32/INT64 max). */
const SLICE_INFINITY = 2 ** 31 - 1;

export interface ShapeInference {
  /** Type and shape (rank undefined when unknown) of every value. */
  shapes: Map<string, ValueInfo>;
  /** Elements of small tensors whose contents could be derived (flattened, row-major). */
  values: Map<string, Dim[]>;
  /**
   * Contradictions found (e.g. a declared input shape that does not fit a constant): the dims
   * involved were left unknown rather than failing, since such files often still load.
   */
  warnings: string[];
}

/** Rank and known dims of every value: graph inputs, initializers and node outputs. */
export function inferShapes(model: Model): Map<string, ValueInfo> {
  return inferShapesAndValues(model).shapes;
}

/** The inferred dims of `name`, or undefined when its rank is unknown (or the name is not a value). */
export function shapeOf(shapes: Map<string, ValueInfo>, name: string): Dim[] | undefined {
  return shapes.get(name)?.shape;
}

export function inferShapesAndValues(model: Model): ShapeInference {
  const g = model.graph;
  const ctx: Ctx = {
    opset: opsetVersion(model, '') ?? 17,
    shapes: new Map(),
    values: new Map(),
    warnings: [],
  };
  const declared = new Map<string, ValueInfo>();
  for (const v of g.valueInfo.values()) declared.set(v.name, v);
  for (const v of g.outputs) declared.set(v.name, v);

  for (const v of g.inputs) {
    if (g.initializers.has(v.name)) continue;
    ctx.shapes.set(v.name, { name: v.name, elemType: v.elemType, shape: v.shape && [...v.shape] });
  }
  for (const [name, t] of g.initializers) {
    ctx.shapes.set(name, { name, elemType: t.dataType, shape: [...t.dims] });
    const value = tensorValue(t);
    if (value) ctx.values.set(name, value);
  }

  for (const node of nodeOrder(g)) {
    const view = new NodeView(node, ctx);
    const rule = RULES[node.opType];
    let outs: Out[] = [];
    if (rule) outs = rule(view);
    node.outputs.forEach((name, i) => {
      if (!name) return;
      const out = outs[i] ?? {};
      const decl = declared.get(name);
      const elemType = out.type || decl?.elemType || DataType.UNDEFINED;
      const shape = mergeShapes(out.shape, decl?.shape);
      ctx.shapes.set(name, { name, elemType, shape });
      if (out.value && shape && shape.every((d) => typeof d === 'number') && numel(shape as number[]) === out.value.length) {
        ctx.values.set(name, out.value);
      }
    });
  }
  return { shapes: ctx.shapes, values: ctx.values, warnings: ctx.warnings };
}

/**
 * Inferred dims first; declared ones fill what we could not derive. Where they disagree a known
 * number beats a symbol (the declaration may pin a dim the graph leaves symbolic).
 */
function mergeShapes(inferred: Dim[] | undefined, decl: Dim[] | undefined): Dim[] | undefined {
  if (!inferred) return decl && [...decl];
  if (!decl || decl.length !== inferred.length) return inferred;
  return inferred.map((d, i) => {
    const e = decl[i]!;
    if (typeof d === 'number') return d;
    if (typeof e === 'number') return e;
    return d ?? e;
  });
}

/** Producers before consumers, without touching the graph; leftovers (cycles) keep file order. */
function nodeOrder(g: Graph): Node[] {
  const producers = new Map<string, Node>();
  for (const n of g.nodes) for (const o of n.outputs) if (o) producers.set(o, n);
  const done = new Set<Node>();
  const order: Node[] = [];
  const onStack = new Set<Node>();
  for (const root of g.nodes) {
    if (done.has(root)) continue;
    // Iterative DFS: graphs have thousands of nodes in a chain.
    const stack: Array<{ node: Node; next: number }> = [{ node: root, next: 0 }];
    onStack.add(root);
    while (stack.length) {
      const top = stack[stack.length - 1]!;
      if (top.next < top.node.inputs.length) {
        const p = producers.get(top.node.inputs[top.next++]!);
        if (p && !done.has(p) && !onStack.has(p)) {
          onStack.add(p);
          stack.push({ node: p, next: 0 });
        }
      } else {
        stack.pop();
        onStack.delete(top.node);
        done.add(top.node);
        order.push(top.node);
      }
    }
  }
  return order;
}

function tensorValue(t: Tensor): Dim[] | undefined {
  if (t.dataType === DataType.STRING || t.dataType === DataType.UNDEFINED) return undefined;
  if (numel(t.dims) > MAX_TRACKED_ELEMENTS) return undefined;
  try {
    return tensorNumbers(t);
  } catch {
    return undefined;
  }
}

// ---- symbolic dimension arithmetic ------------------------------------------------------------

/** coef × product of names (sorted); names may repeat. */
interface Monomial {
  coef: number;
  syms: string[];
}

function toMonomial(d: Dim): Monomial | null {
  if (d === null) return null;
  if (typeof d === 'number') return { coef: d, syms: [] };
  const parts = d.split('*').map((p) => p.trim());
  if (parts.some((p) => p === '')) return { coef: 1, syms: [d] };
  let coef = 1;
  const syms: string[] = [];
  for (const p of parts) {
    if (/^\d+$/.test(p)) coef *= Number(p);
    else syms.push(p);
  }
  syms.sort();
  return { coef, syms };
}

function fromMonomial(m: Monomial): Dim {
  if (m.syms.length === 0 || m.coef === 0) return m.coef;
  return (m.coef === 1 ? m.syms : [String(m.coef), ...m.syms]).join('*');
}

function canonical(d: Dim): Dim {
  const m = toMonomial(d);
  return m ? fromMonomial(m) : null;
}

export function sameDim(a: Dim, b: Dim): boolean {
  if (a === null || b === null) return false;
  return a === b || canonical(a) === canonical(b);
}

function mulDim(a: Dim, b: Dim): Dim {
  if (a === 0 || b === 0) return 0;
  const x = toMonomial(a);
  const y = toMonomial(b);
  if (!x || !y) return null;
  if ((x.syms.length || y.syms.length) && !(Number.isInteger(x.coef) && Number.isInteger(y.coef))) return null;
  return fromMonomial({ coef: x.coef * y.coef, syms: [...x.syms, ...y.syms].sort() });
}

/** Exact quotient, or null when it is not a whole monomial (or unknown). */
function divDim(a: Dim, b: Dim): Dim {
  const x = toMonomial(a);
  const y = toMonomial(b);
  if (!x || !y || y.coef === 0) return null;
  if (!Number.isInteger(x.coef) || !Number.isInteger(y.coef) || x.coef % y.coef !== 0) return null;
  const rest = [...x.syms];
  for (const s of y.syms) {
    const i = rest.indexOf(s);
    if (i < 0) return null;
    rest.splice(i, 1);
  }
  return fromMonomial({ coef: x.coef / y.coef, syms: rest });
}

function addDim(a: Dim, b: Dim): Dim {
  if (typeof a === 'number' && typeof b === 'number') return a + b;
  if (a === 0) return b;
  if (b === 0) return a;
  const x = toMonomial(a);
  const y = toMonomial(b);
  if (x && y && x.syms.length && x.syms.join('*') === y.syms.join('*')) return fromMonomial({ coef: x.coef + y.coef, syms: x.syms });
  return null;
}

function subDim(a: Dim, b: Dim): Dim {
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  if (b === 0) return a;
  const x = toMonomial(a);
  const y = toMonomial(b);
  if (x && y && x.syms.join('*') === y.syms.join('*')) {
    const c = x.coef - y.coef;
    return c >= 0 ? fromMonomial({ coef: c, syms: x.syms }) : null;
  }
  return null;
}

function productDims(ds: readonly Dim[]): Dim {
  let p: Dim = 1;
  for (const d of ds) p = mulDim(p, d);
  return p;
}

function fmtShape(s: readonly Dim[] | undefined): string {
  return s ? `[${s.map((d) => (d === null ? '?' : String(d))).join(', ')}]` : '[rank unknown]';
}

// ---- rules ------------------------------------------------------------------------------------

interface Ctx {
  opset: number;
  shapes: Map<string, ValueInfo>;
  values: Map<string, Dim[]>;
  warnings: string[];
}

interface Out {
  type?: DataType;
  shape?: Dim[];
  value?: Dim[];
}

type Rule = (n: NodeView) => Out[];

/** A node with typed access to what is known about its inputs. */
class NodeView {
  constructor(readonly node: Node, private ctx: Ctx) {}

  get opset(): number {
    return this.ctx.opset;
  }
  input(i: number): string {
    return this.node.inputs[i] ?? '';
  }
  has(i: number): boolean {
    return !!this.input(i);
  }
  shape(i: number): Dim[] | undefined {
    const name = this.input(i);
    return name ? this.ctx.shapes.get(name)?.shape : undefined;
  }
  type(i: number): DataType {
    const name = this.input(i);
    return (name && this.ctx.shapes.get(name)?.elemType) || DataType.UNDEFINED;
  }
  value(i: number): Dim[] | undefined {
    const name = this.input(i);
    return name ? this.ctx.values.get(name) : undefined;
  }
  /** Input i's value when every element is a number. */
  numbers(i: number): number[] | undefined {
    const v = this.value(i);
    return v && v.every((d) => typeof d === 'number') ? (v as number[]) : undefined;
  }
  /**
   * A 1-D (or scalar) input read as a list of dims: its tracked value, or nulls of the right length
   * when only its length is known, or undefined.
   */
  dimList(i: number): Dim[] | undefined {
    const v = this.value(i);
    if (v) return v;
    const s = this.shape(i);
    if (s && s.length === 1 && typeof s[0] === 'number') return new Array<Dim>(s[0]).fill(null);
    return undefined;
  }
  /** Structurally invalid node (bad attribute): the model cannot run. */
  fail(msg: string): never {
    throw new ModtuneError(`node '${this.node.name}' (${this.node.opType}): ${msg}`);
  }
  /** Dims that contradict each other: note it and carry on with the dim unknown. */
  conflict(msg: string): null {
    this.ctx.warnings.push(`node '${this.node.name}' (${this.node.opType}): ${msg}`);
    return null;
  }
  axis(a: number, rank: number, what = 'axis'): number {
    const ax = a < 0 ? a + rank : a;
    if (!Number.isInteger(ax) || ax < 0 || ax >= rank) this.fail(`${what} ${a} is out of range for rank ${rank}`);
    return ax;
  }
  /** Axes from the attribute (older opsets) or the given input. undefined: not knowable; [] none given. */
  axesFrom(attrName: string, inputIndex: number, inputSince: number): number[] | undefined {
    if (this.opset < inputSince) return attrInts(this.node, attrName) ?? [];
    if (!this.has(inputIndex)) return attrInts(this.node, attrName) ?? [];
    return this.numbers(inputIndex);
  }
}

// ---- helpers shared by rules

function broadcastPair(n: NodeView, a: Dim[], b: Dim[]): Dim[] {
  const r = Math.max(a.length, b.length);
  const out: Dim[] = [];
  for (let i = 0; i < r; i++) {
    const x = i < r - a.length ? 1 : a[i - (r - a.length)]!;
    const y = i < r - b.length ? 1 : b[i - (r - b.length)]!;
    out.push(broadcastDim(n, x, y, a, b));
  }
  return out;
}

function broadcastDim(n: NodeView, x: Dim, y: Dim, a: Dim[], b: Dim[]): Dim {
  if (x === 1) return y;
  if (y === 1) return x;
  if (sameDim(x, y)) return x;
  if (typeof x === 'number' && typeof y === 'number') return n.conflict(`cannot broadcast ${fmtShape(a)} with ${fmtShape(b)}`);
  // A symbol or unknown against a number > 1: valid only if the symbol is 1 or that number.
  if (typeof x === 'number') return x;
  if (typeof y === 'number') return y;
  return null;
}

function broadcastAll(n: NodeView, shapes: Array<Dim[] | undefined>): Dim[] | undefined {
  let acc: Dim[] = [];
  for (const s of shapes) {
    if (!s) return undefined;
    acc = broadcastPair(n, acc, s);
  }
  return acc;
}

/** Inputs that take part in broadcasting (optional ones may be omitted). */
function presentShapes(n: NodeView, from = 0, to = n.node.inputs.length): Array<Dim[] | undefined> {
  const out: Array<Dim[] | undefined> = [];
  for (let i = from; i < to; i++) if (n.has(i)) out.push(n.shape(i));
  return out;
}

/** Numeric dims of a shape, or undefined if any is not a number. */
function numericShape(s: Dim[] | undefined): number[] | undefined {
  return s && s.every((d) => typeof d === 'number') ? (s as number[]) : undefined;
}

const isIntType = (t: DataType) =>
  t === DataType.INT64 || t === DataType.INT32 || t === DataType.INT16 || t === DataType.INT8 ||
  t === DataType.UINT8 || t === DataType.UINT16 || t === DataType.UINT32 || t === DataType.UINT64;

/**
 * Element-wise op over tracked values with numpy broadcasting. `f` returns null when the result is
 * not derivable (e.g. a symbol compared with a positive number).
 */
function elementwiseValues(n: NodeView, outShape: Dim[] | undefined, inputs: number[], f: (xs: Dim[]) => Dim): Dim[] | undefined {
  const os = numericShape(outShape);
  if (!os) return undefined;
  const total = numel(os);
  if (total > MAX_TRACKED_ELEMENTS) return undefined;
  const vals: Dim[][] = [];
  const strides: number[][] = [];
  for (const i of inputs) {
    const v = n.value(i);
    const s = numericShape(n.shape(i));
    if (!v || !s) return undefined;
    vals.push(v);
    // Stride 0 along broadcast axes.
    const st = new Array<number>(os.length).fill(0);
    let acc = 1;
    for (let k = s.length - 1; k >= 0; k--) {
      st[os.length - s.length + k] = s[k] === 1 ? 0 : acc;
      acc *= s[k]!;
    }
    strides.push(st);
  }
  const out: Dim[] = [];
  const idx = new Array<number>(os.length).fill(0);
  for (let e = 0; e < total; e++) {
    const xs = vals.map((v, j) => v[idx.reduce((o, x, k) => o + x * strides[j]![k]!, 0)] ?? null);
    out.push(xs.some((x) => x === null) ? null : f(xs));
    for (let k = os.length - 1; k >= 0; k--) {
      if (++idx[k]! < os[k]!) break;
      idx[k] = 0;
    }
  }
  return out;
}

function unary(type?: (n: NodeView) => DataType): Rule {
  return (n) => [{ type: type ? type(n) : n.type(0), shape: n.shape(0) }];
}

/** Same shape; the value passes through unchanged (Identity-like). */
const passValue: Rule = (n) => [{ type: n.type(0), shape: n.shape(0), value: n.value(0) }];

function broadcasting(type: (n: NodeView) => DataType, valueFn?: (xs: Dim[], n: NodeView) => Dim): Rule {
  return (n) => {
    const inputs = n.node.inputs.map((_, i) => i).filter((i) => n.has(i));
    const shape = broadcastAll(n, inputs.map((i) => n.shape(i)));
    const value = valueFn ? elementwiseValues(n, shape, inputs, (xs) => valueFn(xs, n)) : undefined;
    return [{ type: type(n), shape, value }];
  };
}

const firstType = (n: NodeView) => n.type(0);
const boolType = () => DataType.BOOL;

function numericOp(f: (a: number, b: number) => number, sym?: (a: Dim, b: Dim, n: NodeView) => Dim) {
  return (xs: Dim[], n: NodeView): Dim => {
    const [a, b] = xs as [Dim, Dim];
    if (typeof a === 'number' && typeof b === 'number') {
      const r = f(a, b);
      return Number.isFinite(r) ? (isIntType(n.type(0)) ? Math.trunc(r) : r) : null;
    }
    return sym ? sym(a, b, n) : null;
  };
}

/** Comparison of dims: symbols are known only to be non-negative. */
function compare(op: 'eq' | 'lt' | 'gt' | 'le' | 'ge') {
  return (xs: Dim[]): Dim => {
    const [a, b] = xs as [Dim, Dim];
    if (typeof a === 'number' && typeof b === 'number') {
      const r = op === 'eq' ? a === b : op === 'lt' ? a < b : op === 'gt' ? a > b : op === 'le' ? a <= b : a >= b;
      return r ? 1 : 0;
    }
    if (sameDim(a, b)) return op === 'eq' || op === 'le' || op === 'ge' ? 1 : 0;
    if (op === 'eq') {
      if ((typeof a === 'number' && a < 0) || (typeof b === 'number' && b < 0)) return 0;
    }
    return null;
  };
}

// ---- reshaping ops

const reshape: Rule = (n) => {
  const input = n.shape(0);
  const target = n.dimList(1);
  if (!target) return [{ type: n.type(0) }];
  const allowZero = attrInt(n.node, 'allowzero', 0) === 1;
  const out = target.map((d, i): Dim => {
    if (d === 0 && !allowZero) {
      if (!input) return null;
      if (i >= input.length) n.fail(`target dim ${i} is 0 (copy) but the input has rank ${input.length}`);
      return input[i]!;
    }
    if (typeof d === 'number' && d < -1) n.fail(`target dim ${i} is ${d}; expected -1, 0 or a positive size`);
    return d;
  });
  const minusOne = out.reduce<number[]>((acc, d, i) => (d === -1 ? [...acc, i] : acc), []);
  if (minusOne.length > 1) n.fail(`target shape ${fmtShape(target)} has more than one -1`);
  if (minusOne.length === 1) {
    const i = minusOne[0]!;
    out[i] = input ? divDim(productDims(input), productDims(out.filter((_, k) => k !== i))) : null;
  } else if (input) {
    const a = productDims(input);
    const b = productDims(out);
    if (typeof a === 'number' && typeof b === 'number' && a !== b) n.conflict(`cannot reshape ${fmtShape(input)} (${a} elements) to ${fmtShape(out)} (${b})`);
  }
  return [{ type: n.type(0), shape: out, value: n.value(0) }];
};

const flatten: Rule = (n) => {
  const s = n.shape(0);
  if (!s) return [{ type: n.type(0) }];
  const a = attrInt(n.node, 'axis', 1);
  const axis = a < 0 ? a + s.length : a;
  if (axis < 0 || axis > s.length) n.fail(`axis ${a} is out of range for rank ${s.length}`);
  return [{ type: n.type(0), shape: [productDims(s.slice(0, axis)), productDims(s.slice(axis))], value: n.value(0) }];
};

const squeeze: Rule = (n) => {
  const s = n.shape(0);
  const axes = n.axesFrom('axes', 1, 13);
  if (!s || !axes) return [{ type: n.type(0) }];
  if (axes.length === 0) {
    // Without axes every size-1 dim goes: only knowable when every dim is known.
    if (!numericShape(s)) return [{ type: n.type(0) }];
    return [{ type: n.type(0), shape: s.filter((d) => d !== 1), value: n.value(0) }];
  }
  const drop = new Set(axes.map((a) => n.axis(a, s.length)));
  for (const a of drop) if (typeof s[a] === 'number' && s[a] !== 1) n.conflict(`squeezes axis ${a} of size ${s[a]}`);
  return [{ type: n.type(0), shape: s.filter((_, i) => !drop.has(i)), value: n.value(0) }];
};

const unsqueeze: Rule = (n) => {
  const s = n.shape(0);
  const axes = n.axesFrom('axes', 1, 13);
  if (!s || !axes) return [{ type: n.type(0) }];
  const rank = s.length + axes.length;
  const at = new Set(axes.map((a) => n.axis(a, rank)));
  if (at.size !== axes.length) n.fail(`repeated axes ${JSON.stringify(axes)}`);
  const out: Dim[] = [];
  let k = 0;
  for (let i = 0; i < rank; i++) out.push(at.has(i) ? 1 : s[k++]!);
  return [{ type: n.type(0), shape: out, value: n.value(0) }];
};

const transpose: Rule = (n) => {
  const s = n.shape(0);
  if (!s) return [{ type: n.type(0) }];
  const perm = attrInts(n.node, 'perm') ?? s.map((_, i) => s.length - 1 - i);
  if (perm.length !== s.length) n.fail(`perm ${JSON.stringify(perm)} does not match input rank ${s.length}`);
  return [{ type: n.type(0), shape: perm.map((p) => s[n.axis(p, s.length, 'perm entry')]!) }];
};

const concat: Rule = (n) => {
  const inputs = n.node.inputs.map((_, i) => i).filter((i) => n.has(i));
  const shapes = inputs.map((i) => n.shape(i));
  const type = inputs.length ? n.type(inputs[0]!) : DataType.UNDEFINED;
  if (shapes.some((s) => !s) || !shapes.length) return [{ type }];
  const rank = shapes[0]!.length;
  if (shapes.some((s) => s!.length !== rank)) {
    n.conflict(`inputs have different ranks: ${shapes.map(fmtShape).join(' ')}`);
    return [{ type }];
  }
  const axis = n.axis(attrInt(n.node, 'axis', 0), rank);
  const out: Dim[] = [];
  for (let d = 0; d < rank; d++) {
    if (d === axis) {
      out.push(shapes.reduce<Dim>((acc, s) => addDim(acc, s![d]!), 0));
      continue;
    }
    let merged: Dim = null;
    for (const s of shapes) {
      const x = s![d]!;
      if (typeof x === 'number') {
        if (typeof merged === 'number' && merged !== x) {
          merged = n.conflict(`inputs disagree on dim ${d}: ${shapes.map(fmtShape).join(' ')}`);
          break;
        }
        merged = x;
      } else if (merged === null) merged = x;
    }
    out.push(merged);
  }
  // Values: concatenation along the axis of row-major blocks.
  let value: Dim[] | undefined;
  const numeric = shapes.map(numericShape);
  if (numeric.every((s) => s)) {
    const outer = numel(numeric[0]!.slice(0, axis));
    const parts = inputs.map((i, j) => n.value(i) ?? new Array<Dim>(numel(numeric[j]!)).fill(null));
    if (parts.some((p, j) => p.length !== numel(numeric[j]!))) return [{ type, shape: out }];
    value = [];
    for (let o = 0; o < outer; o++) {
      parts.forEach((p, j) => {
        const block = numel(numeric[j]!.slice(axis));
        value!.push(...p.slice(o * block, (o + 1) * block));
      });
    }
    if (value.length > MAX_TRACKED_ELEMENTS || value.every((x) => x === null)) value = undefined;
  }
  return [{ type, shape: out, value }];
};

const split: Rule = (n) => {
  const s = n.shape(0);
  const count = n.node.outputs.length;
  const type = n.type(0);
  if (!s) return n.node.outputs.map(() => ({ type }));
  const axis = n.axis(attrInt(n.node, 'axis', 0), s.length);
  let sizes: Dim[] | undefined;
  if (n.opset < 13) sizes = attrInts(n.node, 'split');
  else if (n.has(1)) sizes = n.dimList(1);
  if (!sizes) {
    const parts = attrInt(n.node, 'num_outputs') ?? count;
    const d = s[axis]!;
    const each = divDim(d, parts);
    if (each !== null) sizes = new Array<Dim>(parts).fill(each);
    else if (typeof d === 'number') {
      // Uneven split (opset 18): all chunks ceil(d/parts), the last one smaller.
      const c = Math.ceil(d / parts);
      sizes = Array.from({ length: parts }, (_, i) => Math.max(0, Math.min(c, d - i * c)));
    } else sizes = new Array<Dim>(parts).fill(null);
  }
  let offset = 0;
  const v = n.value(0);
  return n.node.outputs.map((_, i) => {
    const shape = [...s];
    shape[axis] = sizes![i] ?? null;
    let value: Dim[] | undefined;
    const size = sizes![i];
    if (v && s.length === 1 && typeof size === 'number') value = v.slice(offset, offset + size);
    offset += typeof size === 'number' ? size : NaN;
    return { type, shape, value };
  });
};

/** Output length of a slice along a dim of known size (ONNX clamping rules). */
function sliceRange(d: number, start: number, end: number, step: number): { first: number; count: number } {
  let s = start < 0 ? start + d : start;
  let e = end < 0 ? end + d : end;
  if (step > 0) {
    s = Math.min(Math.max(s, 0), d);
    e = Math.min(Math.max(e, 0), d);
    return { first: s, count: Math.max(0, Math.ceil((e - s) / step)) };
  }
  s = Math.min(Math.max(s, 0), d - 1);
  e = Math.min(Math.max(e, -1), d - 1);
  return { first: s, count: Math.max(0, Math.ceil((s - e) / -step)) };
}

/** Slice length where the dim or the bounds are symbolic; only the unit-step cases exporters use. */
function symbolicSliceLength(d: Dim, start: Dim, end: Dim, step: Dim): Dim {
  if (step !== 1) return null;
  let s: Dim;
  if (typeof start === 'number') {
    if (start <= -SLICE_INFINITY) s = 0;
    else if (start >= 0) s = start;
    else return null; // counts back from an end we only know symbolically
  } else s = start;
  let e: Dim;
  if (typeof end === 'number') {
    if (end >= SLICE_INFINITY) e = d;
    else if (end < 0) e = end <= -SLICE_INFINITY ? 0 : addDim(d, end);
    else if (typeof d === 'number') e = Math.min(end, d);
    else return null; // min(symbol, number) is unknown
  } else {
    // A run-time bound taken from another tensor's shape ("the first seq positions"): it lies
    // within the sliced dim in any graph that runs, so the slice ends there.
    e = end;
  }
  if (e === null || s === null) return null;
  return subDim(e, s);
}

const slice: Rule = (n) => {
  const s = n.shape(0);
  const type = n.type(0);
  let starts: Dim[] | undefined;
  let ends: Dim[] | undefined;
  let axes: Dim[] | undefined;
  let steps: Dim[] | undefined;
  if (n.opset < 10) {
    starts = attrInts(n.node, 'starts');
    ends = attrInts(n.node, 'ends');
    axes = attrInts(n.node, 'axes');
  } else {
    starts = n.value(1);
    ends = n.value(2);
    axes = n.has(3) ? n.value(3) : undefined;
    steps = n.has(4) ? n.value(4) : undefined;
    if (n.has(3) && !axes) {
      // Axes unknown: which dims change is unknown, but the rank is kept.
      return [{ type, shape: s && s.map(() => null) }];
    }
  }
  if (!s) return [{ type }];
  if (!starts || !ends) {
    // Bounds unknown: the rank is kept; dims on sliced axes are unknown.
    const known = axes && axes.every((a) => typeof a === 'number');
    if (!known) return [{ type, shape: s.map(() => null) }];
    const sliced = new Set((axes as number[]).map((a) => n.axis(a, s.length)));
    return [{ type, shape: s.map((d, i) => (sliced.has(i) ? null : d)) }];
  }
  if (starts.length !== ends.length) n.fail(`starts (${starts.length}) and ends (${ends.length}) differ in length`);
  const ax = axes ?? starts.map((_, i) => i);
  if (!ax.every((a): a is number => typeof a === 'number')) return [{ type, shape: s.map(() => null) }];
  const st = steps ?? starts.map(() => 1);
  const out = [...s];
  const plan: Array<{ axis: number; first: number; count: number; step: number } | null> = [];
  (ax as number[]).forEach((a, i) => {
    const axis = n.axis(a, s.length);
    const d = s[axis]!;
    const b = starts![i]!;
    const e = ends![i]!;
    const step = st[i]!;
    if (step === 0) n.fail(`step is 0 on axis ${a}`);
    if (typeof d === 'number' && typeof b === 'number' && typeof e === 'number' && typeof step === 'number') {
      const r = sliceRange(d, b, e, step);
      out[axis] = r.count;
      plan.push({ axis, ...r, step });
    } else {
      out[axis] = symbolicSliceLength(d, b, e, step);
      plan.push(null);
    }
  });
  let value: Dim[] | undefined;
  const v = n.value(0);
  if (v && s.length === 1 && plan.length === 1 && plan[0]) {
    const { first, count, step } = plan[0];
    value = Array.from({ length: count }, (_, k) => v[first + k * step] ?? null);
  }
  return [{ type, shape: out, value }];
};

const gather: Rule = (n) => {
  const data = n.shape(0);
  const idx = n.shape(1);
  const type = n.type(0);
  if (!data || !idx) return [{ type }];
  if (data.length === 0) n.fail('data must have rank >= 1');
  const axis = n.axis(attrInt(n.node, 'axis', 0), data.length);
  const shape = [...data.slice(0, axis), ...idx, ...data.slice(axis + 1)];
  let value: Dim[] | undefined;
  const v = n.value(0);
  const iv = n.numbers(1);
  const ds = numericShape(data);
  if (v && iv && ds) {
    const outer = numel(ds.slice(0, axis));
    const inner = numel(ds.slice(axis + 1));
    const len = ds[axis]!;
    value = [];
    for (let o = 0; o < outer; o++) {
      for (const raw of iv) {
        const k = raw < 0 ? raw + len : raw;
        const ok = k >= 0 && k < len;
        if (!ok) n.conflict(`index ${raw} is out of range for dim ${len}`);
        for (let j = 0; j < inner; j++) value.push(ok ? v[(o * len + k) * inner + j] ?? null : null);
      }
    }
  }
  return [{ type, shape, value }];
};

const expand: Rule = (n) => {
  const s = n.shape(0);
  const target = n.dimList(1);
  const type = n.type(0);
  if (!s || !target) return [{ type }];
  // A null target dim is unknown, not 1: broadcastDim keeps known numbers > 1 and nulls the rest.
  return [{ type, shape: broadcastPair(n, s, target) }];
};

const tile: Rule = (n) => {
  const s = n.shape(0);
  const reps = n.dimList(1);
  if (!s) return [{ type: n.type(0) }];
  if (!reps) return [{ type: n.type(0), shape: s.map(() => null) }];
  if (reps.length !== s.length) n.fail(`repeats has ${reps.length} entries for input rank ${s.length}`);
  return [{ type: n.type(0), shape: s.map((d, i) => mulDim(d, reps[i]!)) }];
};

const pad: Rule = (n) => {
  const s = n.shape(0);
  if (!s) return [{ type: n.type(0) }];
  if (n.opset >= 18 && n.has(3)) return [{ type: n.type(0), shape: s.map(() => null) }];
  const pads = n.opset < 11 ? attrInts(n.node, 'pads') : n.value(1);
  if (!pads) return [{ type: n.type(0), shape: s.map(() => null) }];
  if (pads.length !== 2 * s.length) n.fail(`pads has ${pads.length} entries for input rank ${s.length}`);
  return [{ type: n.type(0), shape: s.map((d, i) => addDim(addDim(d, pads[i]!), pads[i + s.length]!)) }];
};

const constantOfShape: Rule = (n) => {
  const t = attrTensor(n.node, 'value');
  const type = t?.dataType ?? DataType.FLOAT;
  const dims = n.dimList(0);
  if (!dims) return [{ type }];
  const shape = dims.map((d) => (typeof d === 'number' && d < 0 ? n.fail(`negative dim ${d} in shape`) : d));
  let value: Dim[] | undefined;
  const ns = numericShape(shape);
  if (ns && numel(ns) <= MAX_TRACKED_ELEMENTS) {
    const fill = t ? tensorNumbers(t)[0] ?? 0 : 0;
    value = new Array<Dim>(numel(ns)).fill(fill);
  }
  return [{ type, shape, value }];
};

const constant: Rule = (n) => {
  const a = n.node.attrs;
  if (a.value?.type === 'tensor') {
    const t = a.value.value;
    return [{ type: t.dataType, shape: [...t.dims], value: tensorValue(t) }];
  }
  if (a.value_float) return [{ type: DataType.FLOAT, shape: [], value: [attrFloat(n.node, 'value_float', 0)] }];
  if (a.value_int) return [{ type: DataType.INT64, shape: [], value: [attrInt(n.node, 'value_int', 0)] }];
  if (a.value_floats?.type === 'floats') {
    const v = a.value_floats.value;
    return [{ type: DataType.FLOAT, shape: [v.length], value: v.length <= MAX_TRACKED_ELEMENTS ? [...v] : undefined }];
  }
  if (a.value_ints?.type === 'ints') {
    const v = a.value_ints.value;
    return [{ type: DataType.INT64, shape: [v.length], value: v.length <= MAX_TRACKED_ELEMENTS ? [...v] : undefined }];
  }
  if (a.value_string) return [{ type: DataType.STRING, shape: [] }];
  if (a.value_strings?.type === 'strings') return [{ type: DataType.STRING, shape: [a.value_strings.value.length] }];
  return [{}];
};

const range: Rule = (n) => {
  const type = n.type(0);
  const [start, limit, delta] = [n.value(0)?.[0] ?? null, n.value(1)?.[0] ?? null, n.value(2)?.[0] ?? null];
  let len: Dim = null;
  if (typeof start === 'number' && typeof limit === 'number' && typeof delta === 'number') {
    if (delta === 0) n.fail('delta is 0');
    len = Math.max(0, Math.ceil((limit - start) / delta));
  } else if (delta === 1) {
    len = subDim(limit, start);
  }
  let value: Dim[] | undefined;
  if (typeof len === 'number' && len <= MAX_TRACKED_ELEMENTS && typeof start === 'number' && typeof delta === 'number') {
    value = Array.from({ length: len }, (_, i) => start + i * delta);
  }
  return [{ type, shape: [len], value }];
};

const shapeOp: Rule = (n) => {
  const s = n.shape(0);
  if (!s) return [{ type: DataType.INT64, shape: [null] }];
  let start = attrInt(n.node, 'start', 0);
  let end = attrInt(n.node, 'end', s.length);
  const clamp = (x: number) => Math.min(Math.max(x < 0 ? x + s.length : x, 0), s.length);
  start = clamp(start);
  end = clamp(end);
  const dims = s.slice(start, Math.max(start, end));
  return [{ type: DataType.INT64, shape: [dims.length], value: dims }];
};

const sizeOp: Rule = (n) => {
  const s = n.shape(0);
  return [{ type: DataType.INT64, shape: [], value: s ? [productDims(s)] : undefined }];
};

// ---- compute ops

const matmul: Rule = (n) => {
  const a = n.shape(0);
  const b = n.shape(1);
  const type = n.type(0);
  if (!a || !b) return [{ type }];
  return [{ type, shape: matmulShape(n, a, b) }];
};

function matmulShape(n: NodeView, a: Dim[], b: Dim[]): Dim[] {
  if (a.length === 0 || b.length === 0) n.fail(`MatMul inputs must have rank >= 1, got ${fmtShape(a)} and ${fmtShape(b)}`);
  const A = a.length === 1 ? [1, a[0]!] : a;
  const B = b.length === 1 ? [b[0]!, 1] : b;
  const k1 = A[A.length - 1]!;
  const k2 = B[B.length - 2]!;
  if (typeof k1 === 'number' && typeof k2 === 'number' && k1 !== k2) n.conflict(`inner dims differ: ${fmtShape(a)} × ${fmtShape(b)}`);
  const batch = broadcastPair(n, A.slice(0, -2), B.slice(0, -2));
  const out = [...batch];
  if (a.length > 1) out.push(A[A.length - 2]!);
  if (b.length > 1) out.push(B[B.length - 1]!);
  return out;
}

/** com.microsoft FusedMatMul / TransposeMatMul: MatMul with optional transposes of the last two dims. */
const fusedMatmul: Rule = (n) => {
  let a = n.shape(0);
  let b = n.shape(1);
  const type = n.type(0);
  if (!a || !b) return [{ type }];
  if (attrInt(n.node, 'transBatchA', 0) || attrInt(n.node, 'transBatchB', 0)) return [{ type }];
  const swap = (s: Dim[]) => (s.length >= 2 ? [...s.slice(0, -2), s[s.length - 1]!, s[s.length - 2]!] : s);
  if (attrInt(n.node, 'transA', 0)) a = swap(a);
  if (attrInt(n.node, 'transB', 0)) b = swap(b);
  return [{ type, shape: matmulShape(n, a, b) }];
};

const gemm: Rule = (n) => {
  const a = n.shape(0);
  const b = n.shape(1);
  const type = n.type(0);
  if (!a || !b) return [{ type, shape: [null, null] }];
  if (a.length !== 2 || b.length !== 2) n.fail(`inputs must be 2-D, got ${fmtShape(a)} and ${fmtShape(b)}`);
  const [m, k1] = attrInt(n.node, 'transA', 0) ? [a[1]!, a[0]!] : [a[0]!, a[1]!];
  const [k2, nn] = attrInt(n.node, 'transB', 0) ? [b[1]!, b[0]!] : [b[0]!, b[1]!];
  if (typeof k1 === 'number' && typeof k2 === 'number' && k1 !== k2) n.conflict(`inner dims differ: ${fmtShape(a)} × ${fmtShape(b)}`);
  return [{ type, shape: [m, nn] }];
};

/** Reductions: axes from the attribute or (newer opsets) the second input. */
function reduce(axesInputSince: number): Rule {
  return (n) => {
    const s = n.shape(0);
    const type = n.type(0);
    const keep = attrInt(n.node, 'keepdims', 1) === 1;
    const axes = n.axesFrom('axes', 1, axesInputSince);
    if (!s) return [{ type }];
    if (!axes) return [{ type, shape: keep ? s.map(() => null) : undefined }];
    let reduced: Set<number>;
    if (axes.length === 0) {
      if (attrInt(n.node, 'noop_with_empty_axes', 0) === 1) return [{ type, shape: [...s], value: n.value(0) }];
      reduced = new Set(s.map((_, i) => i));
    } else reduced = new Set(axes.map((a) => n.axis(a, s.length)));
    const shape = keep ? s.map((d, i) => (reduced.has(i) ? 1 : d)) : s.filter((_, i) => !reduced.has(i));
    let value: Dim[] | undefined;
    const v = n.value(0);
    if (v && s.length <= 1) value = [reduceValues(n.node.opType, v)];
    return [{ type, shape, value }];
  };
}

function reduceValues(op: string, v: Dim[]): Dim {
  if (v.some((x) => x === null)) return null;
  if (op === 'ReduceProd') return productDims(v);
  if (op === 'ReduceSum') return v.reduce<Dim>((a, x) => addDim(a, x), 0);
  const nums = v.every((x) => typeof x === 'number') ? (v as number[]) : undefined;
  if (!nums || !nums.length) return null;
  if (op === 'ReduceMax') return Math.max(...nums);
  if (op === 'ReduceMin') return Math.min(...nums);
  return null;
}

const argReduce: Rule = (n) => {
  const s = n.shape(0);
  if (!s) return [{ type: DataType.INT64 }];
  const axis = n.axis(attrInt(n.node, 'axis', 0), s.length);
  const keep = attrInt(n.node, 'keepdims', 1) === 1;
  return [{ type: DataType.INT64, shape: keep ? s.map((d, i) => (i === axis ? 1 : d)) : s.filter((_, i) => i !== axis) }];
};

/** Per-row statistics (mean, inverse std) of the normalisations: dims from `axis` on become 1. */
function statsShape(s: Dim[] | undefined, axis: number): Dim[] | undefined {
  return s && s.map((d, i) => (i >= axis ? 1 : d));
}

const layerNorm: Rule = (n) => {
  const s = n.shape(0);
  const type = n.type(0);
  const stash = attrInt(n.node, 'stash_type', DataType.FLOAT) as DataType;
  const axis = s ? n.axis(attrInt(n.node, 'axis', -1), s.length) : 0;
  const stats = statsShape(s, axis);
  return [{ type, shape: s }, { type: stash, shape: stats }, { type: stash, shape: stats }];
};

/** com.microsoft SkipLayerNormalization: output, mean, inv_std_var, input_skip_bias_sum. */
const skipLayerNorm: Rule = (n) => {
  const s = n.shape(0);
  const type = n.type(0);
  const stats = s && statsShape(s, s.length - 1);
  return [{ type, shape: s }, { type: DataType.FLOAT, shape: stats }, { type: DataType.FLOAT, shape: stats }, { type, shape: s }];
};

const dropout: Rule = (n) => {
  const s = n.shape(0);
  return [{ type: n.type(0), shape: s }, { type: DataType.BOOL, shape: s }];
};

/** SoftmaxCrossEntropyLoss / NegativeLogLikelihoodLoss: scores [N, C, d1...], labels [N, d1...]. */
function lossRule(hasLogProb: boolean): Rule {
  return (n) => {
    const type = n.type(0);
    const reduction = attrString(n.node, 'reduction', 'mean');
    const loss: Out = reduction === 'none' ? { type, shape: n.shape(1) } : { type, shape: [] };
    return hasLogProb ? [loss, { type, shape: n.shape(0) }] : [loss];
  };
}

const topK: Rule = (n) => {
  const s = n.shape(0);
  const k = n.opset < 10 ? attrInt(n.node, 'k', 0) : n.value(1)?.[0] ?? null;
  if (!s) return [{ type: n.type(0) }, { type: DataType.INT64 }];
  const axis = n.axis(attrInt(n.node, 'axis', -1), s.length);
  const shape = s.map((d, i) => (i === axis ? k : d));
  return [{ type: n.type(0), shape }, { type: DataType.INT64, shape }];
};

const oneHot: Rule = (n) => {
  const s = n.shape(0);
  const depth = n.value(1)?.[0] ?? null;
  const type = n.type(2);
  if (!s) return [{ type }];
  const rank = s.length + 1;
  const axis = n.axis(attrInt(n.node, 'axis', -1), rank);
  const shape = [...s];
  shape.splice(axis, 0, typeof depth === 'number' ? Math.trunc(depth) : depth);
  return [{ type, shape }];
};

/** Einsum with explicit output subscripts and no ellipsis. */
const einsum: Rule = (n) => {
  const eq = attrString(n.node, 'equation', '').replace(/\s/g, '');
  const type = n.type(0);
  const m = /^([a-zA-Z,]+)->([a-zA-Z]*)$/.exec(eq);
  if (!m) return [{ type }];
  const terms = m[1]!.split(',');
  const letters = new Map<string, Dim>();
  for (let i = 0; i < terms.length; i++) {
    const s = n.shape(i);
    if (!s) return [{ type }];
    if (s.length !== terms[i]!.length) n.fail(`term '${terms[i]}' does not match input rank ${s.length}`);
    [...terms[i]!].forEach((c, k) => {
      const d = s[k]!;
      const prev = letters.get(c);
      letters.set(c, prev === undefined || prev === null || prev === 1 ? d : typeof d === 'number' && d !== 1 ? d : prev);
    });
  }
  return [{ type, shape: [...m[2]!].map((c) => letters.get(c) ?? null) }];
};

/** com.microsoft Attention: input [B, S, hidden], bias [3H] (or qkv_hidden_sizes) → [B, S, Hv]. */
const msAttention: Rule = (n) => {
  const s = n.shape(0);
  const type = n.type(0);
  if (!s || s.length !== 3) return [{ type }];
  const sizes = attrInts(n.node, 'qkv_hidden_sizes');
  const bias = n.shape(2);
  const hv: Dim = sizes ? sizes[2]! : bias && typeof bias[0] === 'number' ? bias[0] / 3 : null;
  return [{ type, shape: [s[0]!, s[1]!, hv] }];
};

const where: Rule = (n) => {
  const shape = broadcastAll(n, [n.shape(0), n.shape(1), n.shape(2)]);
  const value = elementwiseValues(n, shape, [0, 1, 2], ([c, a, b]) => (typeof c === 'number' ? (c ? a! : b!) : null));
  return [{ type: n.type(1), shape, value }];
};

const cast: Rule = (n) => {
  const to = attrInt(n.node, 'to', DataType.UNDEFINED) as DataType;
  const v = n.value(0);
  let value: Dim[] | undefined;
  if (v) {
    if (to === DataType.BOOL) value = v.map((x) => (typeof x === 'number' ? (x !== 0 ? 1 : 0) : null));
    else if (isIntType(to)) value = v.map((x) => (typeof x === 'number' ? Math.trunc(x) : x));
    else value = v;
  }
  return [{ type: to, shape: n.shape(0), value }];
};

const castLike: Rule = (n) => [{ type: n.type(1), shape: n.shape(0), value: n.value(0) }];

const nonZero: Rule = (n) => {
  const s = n.shape(0);
  return [{ type: DataType.INT64, shape: [s ? s.length : null, null] }];
};

/**
 * Max/Min of dims. A symbolic dim is a size, taken to be >= 1 (exporters clamp shapes with
 * Max(shape, 1) / Min(shape, 1)); against anything larger the result stays unknown.
 */
function extremum(xs: Dim[], op: 'max' | 'min'): Dim {
  const nums = xs.filter((x): x is number => typeof x === 'number');
  const syms = xs.filter((x) => typeof x === 'string');
  if (!syms.length) return op === 'max' ? Math.max(...nums) : Math.min(...nums);
  if (!syms.every((x) => sameDim(x, syms[0]!))) return null;
  const bound = nums.length ? (op === 'max' ? Math.max(...nums) : Math.min(...nums)) : undefined;
  if (bound === undefined) return syms[0]!;
  if (op === 'max') return bound <= 1 ? syms[0]! : null;
  return bound <= 1 ? bound : null;
}

const numeric = (f: (a: number, b: number) => number, sym?: (a: Dim, b: Dim, n: NodeView) => Dim) => broadcasting(firstType, numericOp(f, sym));

const divValue = (a: Dim, b: Dim, n: NodeView): Dim => (isIntType(n.type(0)) ? divDim(a, b) : null);

const UNARY_SAME = [
  'Abs', 'Neg', 'Sqrt', 'Reciprocal', 'Exp', 'Log', 'Tanh', 'Erf', 'Relu', 'Sigmoid', 'Softplus', 'Softsign',
  'Floor', 'Ceil', 'Round', 'Sign', 'Cos', 'Sin', 'Tan', 'Gelu', 'LeakyRelu', 'Elu', 'Selu', 'HardSigmoid',
  'HardSwish', 'Mish', 'Clip', 'Softmax', 'LogSoftmax', 'Hardmax', 'CumSum', 'Trilu', 'ThresholdedRelu',
  'Celu', 'Shrink', 'QuickGelu', 'LpNormalization', 'MeanVarianceNormalization', 'BatchNormalization',
  'InstanceNormalization', 'SimplifiedLayerNormalization', 'RMSNormalization',
];

const RULES: Record<string, Rule> = {
  Identity: passValue,
  Constant: constant,
  Shape: shapeOp,
  Size: sizeOp,
  Cast: cast,
  CastLike: castLike,
  Reshape: reshape,
  Flatten: flatten,
  Squeeze: squeeze,
  Unsqueeze: unsqueeze,
  Transpose: transpose,
  Concat: concat,
  Split: split,
  Slice: slice,
  Gather: gather,
  GatherElements: (n) => [{ type: n.type(0), shape: n.shape(1) }],
  Expand: expand,
  Tile: tile,
  Pad: pad,
  ConstantOfShape: constantOfShape,
  Range: range,
  NonZero: nonZero,
  Where: where,
  MatMul: matmul,
  FusedMatMul: fusedMatmul,
  TransposeMatMul: fusedMatmul,
  Gemm: gemm,
  Einsum: einsum,
  Attention: msAttention,
  LayerNormalization: layerNorm,
  SkipLayerNormalization: skipLayerNorm,
  Dropout: dropout,
  BiasDropout: dropout,
  SoftmaxCrossEntropyLoss: lossRule(true),
  SoftmaxCrossEntropyLossInternal: lossRule(true),
  NegativeLogLikelihoodLoss: lossRule(false),
  TopK: topK,
  OneHot: oneHot,
  ArgMax: argReduce,
  ArgMin: argReduce,
  ReduceSum: reduce(13),
  ReduceMean: reduce(18),
  ReduceMax: reduce(18),
  ReduceMin: reduce(18),
  ReduceProd: reduce(18),
  ReduceL1: reduce(18),
  ReduceL2: reduce(18),
  ReduceSumSquare: reduce(18),
  ReduceLogSum: reduce(18),
  ReduceLogSumExp: reduce(18),
  Add: numeric((a, b) => a + b, (a, b) => addDim(a, b)),
  Sub: numeric((a, b) => a - b, (a, b) => subDim(a, b)),
  Mul: numeric((a, b) => a * b, (a, b) => mulDim(a, b)),
  Div: numeric((a, b) => a / b, divValue),
  Mod: numeric((a, b) => a % b),
  Pow: broadcasting(firstType),
  PRelu: broadcasting(firstType),
  BitShift: broadcasting(firstType),
  Max: broadcasting(firstType, (xs) => extremum(xs, 'max')),
  Min: broadcasting(firstType, (xs) => extremum(xs, 'min')),
  Sum: broadcasting(firstType),
  Mean: broadcasting(firstType),
  Equal: broadcasting(boolType, compare('eq')),
  Less: broadcasting(boolType, compare('lt')),
  Greater: broadcasting(boolType, compare('gt')),
  LessOrEqual: broadcasting(boolType, compare('le')),
  GreaterOrEqual: broadcasting(boolType, compare('ge')),
  And: broadcasting(boolType, ([a, b]) => (typeof a === 'number' && typeof b === 'number' ? (a && b ? 1 : 0) : null)),
  Or: broadcasting(boolType, ([a, b]) => (typeof a === 'number' && typeof b === 'number' ? (a || b ? 1 : 0) : null)),
  Xor: broadcasting(boolType),
  Not: (n) => [{ type: DataType.BOOL, shape: n.shape(0), value: n.value(0)?.map((x) => (typeof x === 'number' ? (x ? 0 : 1) : null)) }],
  IsNaN: unary(boolType),
  IsInf: unary(boolType),
  // com.microsoft element-wise activations with a broadcast bias input.
  BiasGelu: broadcasting(firstType),
  FastGelu: broadcasting(firstType),
  BiasSoftmax: unary(),
};
for (const op of UNARY_SAME) RULES[op] ??= unary();
// Value-aware unary ops: keep tracked values through the arithmetic exporters do on shapes.
RULES.Neg = (n) => [{ type: n.type(0), shape: n.shape(0), value: n.value(0)?.map((x) => (typeof x === 'number' ? -x : null)) }];
RULES.Abs = (n) => [{ type: n.type(0), shape: n.shape(0), value: n.value(0)?.map((x) => (typeof x === 'number' ? Math.abs(x) : x)) }];
RULES.Floor = (n) => [{ type: n.type(0), shape: n.shape(0), value: n.value(0)?.map((x) => (typeof x === 'number' ? Math.floor(x) : null)) }];
RULES.Ceil = (n) => [{ type: n.type(0), shape: n.shape(0), value: n.value(0)?.map((x) => (typeof x === 'number' ? Math.ceil(x) : null)) }];
RULES.Sqrt = (n) => [{ type: n.type(0), shape: n.shape(0), value: n.value(0)?.map((x) => (typeof x === 'number' ? Math.sqrt(x) : null)) }];

/** The op types this module has a rule for (others keep only declared shapes). */
export const SHAPE_INFERENCE_OPS: ReadonlySet<string> = new Set(Object.keys(RULES));
