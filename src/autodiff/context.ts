import { ModtuneError } from '../errors.js';
import { DataType, dataTypeName } from '../onnx/dtype.js';
import { A, Attr, Dim, Graph, Node } from '../onnx/graph.js';
import { makeTensor } from '../onnx/tensor.js';
import { planSumToShape } from './broadcast.js';
import { ValueFacts, numericDims } from './facts.js';

/**
 * Appends backward nodes to the graph and remembers what it already made, so that shapes,
 * constants and transposes of forward values are computed once however many rules ask for them.
 * It never queries the graph's producer/consumer index: each `addNode` would invalidate it and
 * make the pass quadratic.
 */
export class Emitter {
  readonly created: Node[] = [];
  /** Backward values → the node (made here) that outputs them. */
  readonly madeBy = new Map<string, Node>();
  /** How many emitted nodes read each value. */
  readonly uses = new Map<string, number>();
  private memo = new Map<string, string>();

  constructor(
    readonly graph: Graph,
    readonly facts: ValueFacts,
    /** Opset the emitted nodes must be valid for (≥ 17). */
    readonly opset: number,
    /** Opset the forward graph was written for (decides defaults such as Softmax's axis). */
    readonly sourceOpset: number,
    /** Forward values → their producing nodes (indexed once, before any backward node exists). */
    readonly producers: Map<string, Node>,
  ) {}

  node(opType: string, inputs: string[], opts: { attrs?: Record<string, Attr>; outputs?: number | string[]; scope: string }): Node {
    const n = this.graph.addNode({ opType, inputs, outputs: opts.outputs ?? 1, attrs: opts.attrs, name: `${opts.scope}/${opType}` });
    this.created.push(n);
    const t = this.outputType(n);
    for (const o of n.outputs) {
      this.madeBy.set(o, n);
      this.types.set(o, t);
    }
    for (const i of inputs) if (i) this.uses.set(i, (this.uses.get(i) ?? 0) + 1);
    return n;
  }

  /** Element type of a forward or backward value. */
  dtype(v: string): DataType {
    return this.types.get(v) ?? this.facts.dtype(v);
  }

  private types = new Map<string, DataType>();

  /** The output type of an emitted node: a fixed type for shape/compare ops, else the data input's. */
  private outputType(n: Node): DataType {
    switch (n.opType) {
      case 'Shape': case 'Size': case 'NonZero': return DataType.INT64;
      case 'Equal': case 'Not': case 'Less': case 'Greater': case 'And': case 'Or': return DataType.BOOL;
      case 'Cast': return (n.attrs.to?.value as DataType | undefined) ?? DataType.UNDEFINED;
      case 'ConstantOfShape': {
        const v = n.attrs.value;
        return v?.type === 'tensor' ? v.value.dataType : DataType.FLOAT;
      }
      case 'Where': return this.dtype(n.inputs[1]!);
      default: return n.inputs[0] ? this.dtype(n.inputs[0]) : DataType.UNDEFINED;
    }
  }

  /** Compute once per key. */
  cached(key: string, make: () => string): string {
    let v = this.memo.get(key);
    if (v === undefined) this.memo.set(key, (v = make()));
    return v;
  }

  /** A scalar initializer of the given element type. */
  scalar(value: number, dtype: DataType): string {
    return this.cached(`scalar:${dtype}:${value}`, () => {
      checkConstType(dtype);
      const name = `autodiff.const.${dataTypeName(dtype).toLowerCase()}.${value}`;
      return this.graph.addInitializer(makeTensor(name, dtype, [], [value]));
    });
  }

  /** A 1-D int64 initializer. */
  int64s(values: readonly number[]): string {
    return this.cached(`ints:${values.join(',')}`, () =>
      this.graph.addInitializer(makeTensor(`autodiff.const.ints.${values.join('_') || 'empty'}`, DataType.INT64, [values.length], [...values])));
  }
}

const CONST_TYPES = new Set([DataType.FLOAT, DataType.DOUBLE, DataType.INT64, DataType.INT32]);

function checkConstType(dtype: DataType): void {
  if (!CONST_TYPES.has(dtype)) {
    throw new ModtuneError(`autodiff: gradients through ${dataTypeName(dtype)} values are not supported (float and double are)`);
  }
}

/**
 * What a gradient rule sees: the forward node, the gradients arriving at its outputs, which inputs
 * need a gradient, and helpers that emit standard ONNX ops (named under the forward node's scope).
 */
export class RuleContext {
  readonly scope: string;

  constructor(
    readonly em: Emitter,
    readonly node: Node,
    private outputGrads: (string | undefined)[],
    private needed: boolean[],
  ) {
    this.scope = `${node.name || node.opType}_Grad`;
  }

  get opset(): number {
    return this.em.opset;
  }

  get sourceOpset(): number {
    return this.em.sourceOpset;
  }

  input(i: number): string {
    return this.node.inputs[i] ?? '';
  }

  output(i: number): string {
    return this.node.outputs[i] ?? '';
  }

  /** Gradient arriving at output `i`, undefined when none flows there. */
  dy(i = 0): string | undefined {
    return this.outputGrads[i];
  }

  /** Gradient at output `i` or a ModtuneError (for ops where only that output is differentiable). */
  requireDy(i = 0): string {
    const g = this.outputGrads[i];
    if (!g) throw new ModtuneError(`autodiff: node '${this.node.name}' (${this.node.opType}) has no gradient at output ${i}`);
    return g;
  }

  /** Whether input `i` lies on a path from a trainable value to the loss. */
  needs(i: number): boolean {
    return this.needed[i] ?? false;
  }

  // ---- facts about forward values ----

  /** Element type of a forward value or of a backward value made here. */
  dtype(v: string): DataType {
    return this.em.dtype(v);
  }

  shape(v: string): Dim[] | undefined {
    return this.em.facts.shape(v);
  }

  rank(v: string): number | undefined {
    return this.em.facts.rank(v);
  }

  /** Rank of `v`, or a ModtuneError explaining that this rule needs it. */
  requireRank(v: string, why: string): number {
    const r = this.rank(v);
    if (r === undefined) {
      throw new ModtuneError(`autodiff: node '${this.node.name}' (${this.node.opType}): the rank of '${v}' is unknown, needed ${why}; shape inference could not derive it`);
    }
    return r;
  }

  constNumbers(v: string): number[] | undefined {
    return this.em.facts.constNumbers(v);
  }

  /** The forward node producing `v` (undefined for inputs and initializers). */
  producer(v: string): Node | undefined {
    return this.em.producers.get(v);
  }

  error(msg: string): ModtuneError {
    return new ModtuneError(`autodiff: node '${this.node.name}' (${this.node.opType}): ${msg}`);
  }

  // ---- emitting ----

  op(opType: string, inputs: string[], attrs?: Record<string, Attr>): string {
    return this.em.node(opType, inputs, { attrs, scope: this.scope }).outputs[0]!;
  }

  opMulti(opType: string, inputs: string[], outputs: number, attrs?: Record<string, Attr>): string[] {
    return this.em.node(opType, inputs, { attrs, outputs, scope: this.scope }).outputs;
  }

  /** Scalar constant with the element type of value `like`. */
  scalarLike(value: number, like: string): string {
    return this.em.scalar(value, this.dtype(like));
  }

  ints(values: readonly number[]): string {
    return this.em.int64s(values);
  }

  add(a: string, b: string): string { return this.op('Add', [a, b]); }
  sub(a: string, b: string): string { return this.op('Sub', [a, b]); }
  mul(a: string, b: string): string { return this.op('Mul', [a, b]); }
  div(a: string, b: string): string { return this.op('Div', [a, b]); }
  neg(a: string): string { return this.op('Neg', [a]); }

  /** Multiply by a constant, skipping 1 and turning -1 into Neg. */
  scale(x: string, factor: number, like: string = x): string {
    if (factor === 1) return x;
    if (factor === -1) return this.neg(x);
    return this.mul(x, this.scalarLike(factor, like));
  }

  /** The run-time shape of a forward value: a constant when fully static, else one shared Shape node. */
  shapeOf(v: string): string {
    const dims = numericDims(this.shape(v));
    if (dims) return this.ints(dims);
    return this.em.cached(`shape:${v}`, () => this.em.node('Shape', [v], { scope: `${v}_Shape` }).outputs[0]!);
  }

  reduceSum(x: string, axes: readonly number[], keepdims: boolean): string {
    return this.op('ReduceSum', [x, this.ints(axes)], { keepdims: A.int(keepdims ? 1 : 0) });
  }

  /** ReduceMean takes axes as an attribute up to opset 17 and as an input from 18. */
  reduceMean(x: string, axes: readonly number[], keepdims: boolean): string {
    const k = { keepdims: A.int(keepdims ? 1 : 0) };
    return this.opset >= 18
      ? this.op('ReduceMean', [x, this.ints(axes)], k)
      : this.op('ReduceMean', [x], { ...k, axes: A.ints([...axes]) });
  }

  unsqueeze(x: string, axes: readonly number[]): string {
    return axes.length ? this.op('Unsqueeze', [x, this.ints(axes)]) : x;
  }

  squeeze(x: string, axes: readonly number[]): string {
    return axes.length ? this.op('Squeeze', [x, this.ints(axes)]) : x;
  }

  transpose(x: string, perm: readonly number[]): string {
    if (perm.every((p, i) => p === i)) return x;
    return this.op('Transpose', [x], { perm: A.ints([...perm]) });
  }

  /** Transpose of a forward value, shared between rules (e.g. a weight used by several MatMuls). */
  transposeForward(v: string, perm: readonly number[]): string {
    if (perm.every((p, i) => p === i)) return v;
    return this.em.cached(`transpose:${v}:${perm.join(',')}`, () =>
      this.em.node('Transpose', [v], { attrs: { perm: A.ints([...perm]) }, scope: `${v}_Transpose` }).outputs[0]!);
  }

  /** Reshape to the shape of forward value `like`. */
  reshapeLike(x: string, like: string): string {
    return this.op('Reshape', [x, this.shapeOf(like)]);
  }

  /** Zeros with the shape and type of forward value `v`. */
  zerosLike(v: string): string {
    const zero = makeTensor('', this.dtype(v), [1], [0]);
    return this.op('ConstantOfShape', [this.shapeOf(v)], { value: A.tensor(zero) });
  }

  /** `Where(cond, a, b)`. */
  where(cond: string, a: string, b: string): string {
    return this.op('Where', [cond, a, b]);
  }

  /**
   * Undo broadcasting: sum gradient `g` (whose shape is `gShape` when known) down to the shape of
   * forward value `target`. Emits nothing when the shapes are provably equal, ReduceSum over the
   * proven axes when they are known, and a run-time computation of the axes otherwise.
   */
  sumToShape(g: string, gShape: Dim[] | undefined, target: string): string {
    const plan = planSumToShape(gShape, this.shape(target));
    if (plan.kind === 'same') return g;
    if (plan.kind === 'reduce') {
      const leading = plan.axes.length === plan.drop && plan.axes.every((a, i) => a === i);
      if (leading) return this.reduceSum(g, plan.axes, false);
      const reduced = plan.axes.length ? this.reduceSum(g, plan.axes, true) : g;
      return this.squeeze(reduced, Array.from({ length: plan.drop }, (_, i) => i));
    }
    return this.sumToShapeDynamic(g, gShape, target);
  }

  /**
   * Run-time sum-to-shape: left-pad Shape(target) with ones to the gradient's rank, reduce over the
   * axes where it differs from Shape(g) (none: ReduceSum is a no-op with noop_with_empty_axes), and
   * reshape to Shape(target).
   */
  private sumToShapeDynamic(g: string, gShape: Dim[] | undefined, target: string): string {
    const tShape = this.shapeOf(target);
    const gs = this.op('Shape', [g]);
    const tRank = this.rank(target);
    let padded: string;
    if (tRank !== undefined && gShape !== undefined) {
      const pad = gShape.length - tRank;
      padded = pad > 0 ? this.op('Concat', [this.ints(new Array(pad).fill(1)), tShape], { axis: A.int(0) }) : tShape;
    } else {
      const diff = this.sub(this.op('Shape', [gs]), this.op('Shape', [tShape]));
      const ones = this.op('ConstantOfShape', [diff], { value: A.tensor(makeTensor('', DataType.INT64, [1], [1])) });
      padded = this.op('Concat', [ones, tShape], { axis: A.int(0) });
    }
    const differs = this.op('Not', [this.op('Equal', [padded, gs])]);
    const axes = this.op('Reshape', [this.op('NonZero', [differs]), this.ints([-1])]);
    const summed = this.op('ReduceSum', [g, axes], { keepdims: A.int(1), noop_with_empty_axes: A.int(1) });
    return this.op('Reshape', [summed, tShape]);
  }

  /**
   * The name of the forward node's output `i`, adding the output when the exporter left it off
   * (Dropout's mask, LayerNormalization's mean and inverse std-dev).
   */
  forwardOutput(i: number, hint: string): string {
    const outs = this.node.outputs;
    while (outs.length <= i) outs.push('');
    if (!outs[i]) {
      outs[i] = this.em.graph.uniqueName(`${this.node.name || this.node.opType}/${hint}`);
      this.em.graph.invalidate();
    }
    return outs[i]!;
  }
}

/**
 * A gradient rule: given the gradients at a node's outputs, the gradients of its inputs (one entry
 * per input; undefined where no gradient flows or none is needed). Rules only compute entries
 * for which `ctx.needs(i)` holds.
 */
export type GradientRule = (ctx: RuleContext) => Array<string | undefined>;
