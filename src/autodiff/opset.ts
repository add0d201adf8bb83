import { ModtuneError } from '../errors.js';
import { A, Graph, Model, Node, attrFloat, attrInt, attrInts, opsetVersion } from '../onnx/graph.js';
import { inferShapes } from '../onnx/shapes.js';
import { DataType, arrayTypeFor } from '../onnx/dtype.js';
import { int64s, makeTensor, scalarF32 } from '../onnx/tensor.js';

export interface OpsetUpgrade {
  from: number;
  to: number;
  /** One line per rewritten node: `<node> (<op>): <what changed>`. */
  rewritten: string[];
}

const SOFTMAX_OPS = ['Softmax', 'LogSoftmax', 'Hardmax'];

/** Reduce ops that took `axes` as an attribute until opset 18 (ReduceSum: until 13). */
const REDUCE_OPS_18 = ['ReduceMean', 'ReduceMax', 'ReduceMin', 'ReduceProd', 'ReduceL1', 'ReduceL2', 'ReduceLogSum', 'ReduceLogSumExp', 'ReduceSumSquare'];

/**
 * Re-declare a model at opset `target` (only ever upwards), rewriting the standard-domain nodes
 * whose form or meaning changed on the way so the model computes the same thing:
 * - attributes that became inputs: Squeeze/Unsqueeze/ReduceSum `axes` (13), Split `split` (13),
 *   Dropout `ratio` (12), Pad `pads`/`value` (11), Clip `min`/`max` (11), Slice bounds (10), other
 *   Reduce* `axes` (18; Split also needs `num_outputs` there);
 * - Softmax/LogSoftmax/Hardmax before 13 flattened the input to 2-D at `axis` (default 1); from 13
 *   they act on one axis (default -1). Where `axis` was the last axis only the attribute is made
 *   explicit, otherwise the op is wrapped in Flatten → op → Reshape, the old meaning exactly.
 */
export function upgradeOpset(model: Model, target = 17): OpsetUpgrade {
  const from = opsetVersion(model, '') ?? 1;
  const result: OpsetUpgrade = { from, to: Math.max(from, target), rewritten: [] };
  if (from >= target) return result;
  const g = model.graph;
  const crosses = (version: number) => from < version && target >= version;
  // Ranks decide whether an old Softmax axis was the last one. Inferred before any rewrite (the
  // graph must still match its declared opset); without them the exact Flatten rewrite is used.
  // Types of Pad/Clip data likewise, for the constants that replace their attributes.
  let shapes: ReturnType<typeof inferShapes> | undefined;
  const needsFacts = (crosses(13) && g.nodes.some((n) => SOFTMAX_OPS.includes(n.opType) && attrInt(n, 'axis', 1) !== -1))
    || (crosses(11) && g.nodes.some((n) => (n.opType === 'Pad' && n.attrs.pads) || (n.opType === 'Clip' && (n.attrs.min || n.attrs.max))));
  if (needsFacts) {
    try {
      shapes = inferShapes(model);
    } catch {
      shapes = undefined;
    }
  }
  const rankOf = (v: string) => shapes?.get(v)?.shape?.length;
  const typeOf = (v: string) => shapes?.get(v)?.elemType || g.initializers.get(v)?.dataType || g.inputs.find((i) => i.name === v)?.elemType;
  const note = (n: Node, what: string) => result.rewritten.push(`${n.name || '(unnamed)'} (${n.opType}): ${what}`);
  const constInput = (n: Node, base: string, values: number[]) => g.addInitializer(int64s(`${n.name || n.opType}/${base}`, values));

  const nodeCount = g.nodes.length;
  for (const n of [...g.nodes]) {
    if (n.domain !== '' && n.domain !== 'ai.onnx') continue;
    const op = n.opType;
    if ((op === 'Squeeze' || op === 'Unsqueeze' || op === 'ReduceSum') && crosses(13)) {
      moveIntsToInput(n, 'axes', 1, constInput, note);
    } else if (REDUCE_OPS_18.includes(op) && crosses(18)) {
      moveIntsToInput(n, 'axes', 1, constInput, note);
    } else if (op === 'Split') {
      if (crosses(13)) moveIntsToInput(n, 'split', 1, constInput, note);
      if (crosses(18) && !n.inputs[1] && n.attrs.num_outputs === undefined) {
        n.attrs.num_outputs = A.int(n.outputs.length);
        note(n, 'num_outputs attribute added');
      }
    } else if (op === 'Dropout' && crosses(12) && n.attrs.ratio) {
      const ratio = attrFloat(n, 'ratio', 0.5);
      delete n.attrs.ratio;
      n.inputs[1] = g.addInitializer(scalarF32(`${n.name || op}/ratio`, ratio));
      note(n, 'ratio attribute → input');
    } else if (op === 'Pad' && crosses(11) && n.attrs.pads) {
      const pads = attrInts(n, 'pads')!;
      const value = attrFloat(n, 'value', 0);
      delete n.attrs.pads;
      delete n.attrs.value;
      n.inputs = [n.inputs[0]!, constInput(n, 'pads', pads), scalarLikeData(g, n, 'value', value, typeOf(n.inputs[0]!), target)];
      note(n, 'pads/value attributes → inputs');
    } else if (op === 'Clip' && crosses(11) && (n.attrs.min || n.attrs.max)) {
      const lo = n.attrs.min ? scalarLikeData(g, n, 'min', attrFloat(n, 'min', 0), typeOf(n.inputs[0]!), target) : '';
      const hi = n.attrs.max ? scalarLikeData(g, n, 'max', attrFloat(n, 'max', 0), typeOf(n.inputs[0]!), target) : '';
      delete n.attrs.min;
      delete n.attrs.max;
      n.inputs = [n.inputs[0]!, lo, hi];
      while (n.inputs[n.inputs.length - 1] === '') n.inputs.pop();
      note(n, 'min/max attributes → inputs');
    } else if (op === 'Slice' && crosses(10) && n.attrs.starts) {
      const starts = attrInts(n, 'starts')!;
      const ends = attrInts(n, 'ends') ?? [];
      const axes = attrInts(n, 'axes');
      for (const k of ['starts', 'ends', 'axes']) delete n.attrs[k];
      n.inputs = [n.inputs[0]!, constInput(n, 'starts', starts), constInput(n, 'ends', ends), ...(axes ? [constInput(n, 'axes', axes)] : [])];
      note(n, 'starts/ends/axes attributes → inputs');
    } else if (SOFTMAX_OPS.includes(op) && crosses(13)) {
      upgradeSoftmax(g, n, rankOf(n.inputs[0]!), note);
    }
  }
  g.invalidate();
  // New nodes (CastLike, Flatten/Reshape) were appended after their consumers.
  if (g.nodes.length !== nodeCount) g.topologicalSort();
  setOpset(model, result.to);
  return result;
}

function moveIntsToInput(n: Node, attr: string, index: number, constInput: (n: Node, base: string, v: number[]) => string, note: (n: Node, what: string) => void): void {
  const values = attrInts(n, attr);
  if (!values) return;
  delete n.attrs[attr];
  while (n.inputs.length < index) n.inputs.push('');
  n.inputs[index] = constInput(n, attr, values);
  note(n, `${attr} attribute → input`);
}

/**
 * A scalar constant of the type of the node's data input: made in that type when it is known, else
 * a float cast by CastLike (which exists from opset 15), else float.
 */
function scalarLikeData(g: Graph, n: Node, base: string, value: number, dtype: DataType | undefined, target: number): string {
  const name = `${n.name || n.opType}/${base}`;
  if (dtype && arrayTypeFor(dtype)) return g.addInitializer(makeTensor(name, dtype, [], [value]));
  const c = g.addInitializer(scalarF32(name, value));
  if (target < 15) return c;
  return g.addNode({ opType: 'CastLike', inputs: [c, n.inputs[0]!], name: `${name}_CastLike` }).outputs[0]!;
}

function upgradeSoftmax(g: Graph, n: Node, rank: number | undefined, note: (n: Node, what: string) => void): void {
  const axis = attrInt(n, 'axis', 1);
  if (axis === -1 || (rank !== undefined && axis === rank - 1)) {
    n.attrs.axis = A.int(-1);
    note(n, 'axis made explicit (-1)');
    return;
  }
  if (rank !== undefined && (axis < -rank || axis >= rank)) {
    throw new ModtuneError(`node '${n.name}' (${n.opType}): axis ${axis} is out of range for rank ${rank}`);
  }
  // Old semantics: softmax over the flattened trailing block [axis:].
  const x = n.inputs[0]!;
  const y = n.outputs[0]!;
  const base = n.name || n.opType;
  const flat = g.addNode({ opType: 'Flatten', inputs: [x], name: `${base}/Flatten`, attrs: { axis: A.int(axis) } }).outputs[0]!;
  const inner = g.uniqueName(`${base}/flat_out`);
  const shape = g.addNode({ opType: 'Shape', inputs: [x], name: `${base}/Shape` }).outputs[0]!;
  n.inputs[0] = flat;
  n.outputs[0] = inner;
  n.attrs.axis = A.int(1);
  g.addNode({ opType: 'Reshape', inputs: [inner, shape], outputs: [y], name: `${base}/Reshape` });
  note(n, `axis ${axis} of the opset<13 flattening semantics kept with Flatten → ${n.opType}(axis=1) → Reshape`);
}

function setOpset(model: Model, version: number): void {
  const entry = model.opsetImports.find((o) => o.domain === '' || o.domain === 'ai.onnx');
  if (entry) entry.version = version;
  else model.opsetImports.push({ domain: '', version });
  // Each opset needs a minimum IR version (ONNX's versioning table).
  const minIr = version >= 21 ? 10 : version >= 19 ? 9 : version >= 15 ? 8 : version >= 12 ? 7 : version >= 11 ? 6 : version >= 10 ? 5 : 4;
  if (model.irVersion < minIr) model.irVersion = minIr;
}

