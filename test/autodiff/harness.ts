/**
 * Finite-difference checks of gradient rules: build a tiny graph around an op, make a scalar loss
 * L = Σ_k ReduceSum(out_k · W_k) with fixed random W_k, append the backward graph, run both in
 * onnxruntime-node and compare the analytic gradients with central differences of L.
 */
import * as ort from 'onnxruntime-node';
import { buildBackward } from '../../src/autodiff/backward.js';
import { upgradeOpset } from '../../src/autodiff/opset.js';
import { DataType } from '../../src/onnx/dtype.js';
import { Dim, Graph, ValueInfo } from '../../src/onnx/graph.js';
import { encodeModel, newModel } from '../../src/onnx/io.js';
import { inferShapes } from '../../src/onnx/shapes.js';
import { makeTensor } from '../../src/onnx/tensor.js';

export type ElemType = 'float32' | 'float64' | 'int64' | 'int32' | 'bool';

export interface TestInput {
  name: string;
  shape: number[];
  type?: ElemType; // default: the check's float type
  /** Values (default: standard normal for floats, required for the others). */
  data?: number[];
  /** Differentiate w.r.t. this input (default: true for float inputs). */
  trainable?: boolean;
  /** Shape declared on the graph input (default: `shape`), e.g. ['batch', 3]. */
  declared?: Dim[];
}

/**
 * How buildBackward learns shapes: `static` exact dims; `symbolic` dims equal to a value in
 * `symbols` replaced by its name (as inference reports batch/sequence axes); `unknown` every dim
 * null (ranks only); `infer` no shapes passed (buildBackward runs inferShapes itself).
 */
export type ShapeMode = 'static' | 'symbolic' | 'unknown' | 'infer';

export interface GradCheck {
  type?: 'float32' | 'float64';
  opset?: number;
  inputs: TestInput[];
  /** Add the op(s) under test; return the outputs that enter the loss. */
  build: (g: Graph) => string | string[];
  shapes?: ShapeMode;
  symbols?: Record<string, number>;
  /** Use this output directly as the loss instead of Σ out·W (loss ops under test). */
  lossIsOutput?: boolean;
  eps?: number;
  rtol?: number;
  atol?: number;
  seed?: number;
  /** Entries compared per input (a random subset beyond this; default 12). */
  maxEntries?: number;
  /**
   * Numeric derivatives by `input[k]`, shared between checks of the same forward graph (they do not
   * depend on how shapes are passed to buildBackward).
   */
  numericCache?: Map<string, number>;
}

export interface GradReport {
  /** "input[i]: analytic a vs numeric n" for every entry out of tolerance. */
  failures: string[];
  /** Largest |analytic - numeric| seen. */
  maxAbsError: number;
  /** Number of entries compared. */
  checked: number;
  /** Op types of the backward nodes, in order. */
  backwardOps: string[];
  gradients: Map<string, Float64Array>;
}

const ORT_TYPE: Record<ElemType, ort.Tensor.Type> = { float32: 'float32', float64: 'float64', int64: 'int64', int32: 'int32', bool: 'bool' };
const ONNX_TYPE: Record<ElemType, DataType> = {
  float32: DataType.FLOAT, float64: DataType.DOUBLE, int64: DataType.INT64, int32: DataType.INT32, bool: DataType.BOOL,
};

/** Small deterministic generator (mulberry32) so checks are reproducible. */
export function random(seed: number): { next(): number; normal(): number } {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return { next, normal: () => Math.sqrt(-2 * Math.log(1 - next())) * Math.cos(2 * Math.PI * next()) };
}

export function ortTensor(type: ElemType, data: ArrayLike<number>, dims: readonly number[]): ort.Tensor {
  switch (type) {
    case 'float32': return new ort.Tensor('float32', Float32Array.from(data), dims);
    case 'float64': return new ort.Tensor('float64', Float64Array.from(data), dims);
    case 'int64': return new ort.Tensor('int64', BigInt64Array.from(Array.from(data, (v) => BigInt(v))), dims);
    case 'int32': return new ort.Tensor('int32', Int32Array.from(data), dims);
    case 'bool': return new ort.Tensor('bool', Uint8Array.from(data), dims);
  }
}

const numel = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

function symbolize(dims: readonly number[], symbols: Record<string, number>): Dim[] {
  const byValue = new Map(Object.entries(symbols).map(([k, v]) => [v, k]));
  return dims.map((d) => byValue.get(d) ?? d);
}

export async function session(g: Graph, opset: number): Promise<ort.InferenceSession> {
  return ort.InferenceSession.create(encodeModel(newModel(g, opset)));
}

export async function gradCheck(spec: GradCheck): Promise<GradReport> {
  const type = spec.type ?? 'float64';
  const opset = spec.opset ?? 17;
  const rng = random(spec.seed ?? 1234);
  const mode = spec.shapes ?? 'static';
  const symbols = spec.symbols ?? {};
  const inputs = spec.inputs.map((i) => {
    const t = i.type ?? type;
    const isFloat = t === 'float32' || t === 'float64';
    if (!i.data && !isFloat) throw new Error(`test input ${i.name}: data required for ${t}`);
    const data = i.data ?? Array.from({ length: numel(i.shape) }, () => rng.normal());
    return { ...i, type: t, data, trainable: i.trainable ?? isFloat };
  });
  const feeds = (override?: { name: string; data: number[] }) =>
    Object.fromEntries(inputs.map((i) => [i.name, ortTensor(i.type, override?.name === i.name ? override.data : i.data, i.shape)]));

  // Forward graph with the op under test.
  const g = new Graph();
  for (const i of inputs) {
    const declared = i.declared ?? (mode === 'symbolic' ? symbolize(i.shape, symbols) : i.shape);
    g.inputs.push({ name: i.name, elemType: ONNX_TYPE[i.type], shape: declared });
  }
  const outs = [spec.build(g)].flat();

  // Probe run: concrete shapes and types of every value.
  const probe = g.clone();
  const values = [...new Set(probe.nodes.flatMap((n) => n.outputs).filter(Boolean))];
  const types = inferShapes(newModel(probe, opset));
  probe.outputs = values.map((name) => ({ name, elemType: types.get(name)?.elemType || DataType.FLOAT }));
  const probed = await (await session(probe, opset)).run(feeds());
  const concrete = new Map<string, { dims: number[]; type: ElemType }>();
  for (const [name, t] of Object.entries(probed)) {
    const tt = (Object.keys(ORT_TYPE) as ElemType[]).find((k) => ORT_TYPE[k] === t.type);
    if (tt) concrete.set(name, { dims: [...t.dims], type: tt });
  }
  for (const i of inputs) concrete.set(i.name, { dims: i.shape, type: i.type });

  // Loss.
  let loss: string;
  if (spec.lossIsOutput) {
    loss = outs[0]!;
  } else {
    const terms = outs.map((o, k) => {
      const c = concrete.get(o)!;
      const w = makeTensor(`loss_weight_${k}`, ONNX_TYPE[type], c.dims, Array.from({ length: numel(c.dims) }, () => rng.normal()));
      const wName = g.addInitializer(w);
      concrete.set(wName, { dims: c.dims, type });
      const prod = g.addNode({ opType: 'Mul', inputs: [o, wName] }).outputs[0]!;
      concrete.set(prod, { dims: c.dims, type });
      const r = g.addNode({ opType: 'ReduceSum', inputs: [prod], attrs: { keepdims: { type: 'int', value: 0 } } }).outputs[0]!;
      concrete.set(r, { dims: [], type });
      return r;
    });
    loss = terms[0]!;
    for (const t of terms.slice(1)) {
      loss = g.addNode({ opType: 'Add', inputs: [loss, t] }).outputs[0]!;
      concrete.set(loss, { dims: [], type });
    }
  }
  g.outputs = [{ name: loss, elemType: ONNX_TYPE[type] }];

  let shapes: Map<string, ValueInfo> | undefined;
  if (mode !== 'infer') {
    shapes = new Map();
    for (const [name, c] of concrete) {
      const shape: Dim[] = mode === 'static' ? c.dims : mode === 'symbolic' ? symbolize(c.dims, symbols) : c.dims.map(() => null);
      shapes.set(name, { name, elemType: ONNX_TYPE[c.type], shape });
    }
  }

  const forward = await session(g, opset);
  const trainable = inputs.filter((i) => i.trainable);
  // Below opset 17 the model is first re-declared at 17 (as the pipeline does); the finite
  // differences still run the original, so the upgrade's faithfulness is checked too.
  const upgraded = { ...newModel(g.clone(), opset) };
  if (opset < 17) upgradeOpset(upgraded, 17);
  const bg = upgraded.graph;
  const bOpset = Math.max(opset, 17);
  const { gradients, nodes } = buildBackward(bg, { loss, wrt: trainable.map((i) => i.name), shapes, opset: bOpset });
  bg.outputs.push(...trainable.map((i) => ({ name: gradients.get(i.name)!, elemType: ONNX_TYPE[i.type] })));
  const backward = await session(bg, bOpset);
  const result = await backward.run(feeds());

  const eps = spec.eps ?? (type === 'float64' ? 1e-6 : 1e-2);
  const rtol = spec.rtol ?? (type === 'float64' ? 1e-6 : 2e-2);
  const atol = spec.atol ?? (type === 'float64' ? 1e-8 : 2e-3);
  const lossOf = async (override: { name: string; data: number[] }) =>
    Number((await forward.run(feeds(override)))[loss]!.data[0]);
  const report: GradReport = { failures: [], maxAbsError: 0, checked: 0, backwardOps: nodes.map((n) => n.opType), gradients: new Map() };
  for (const i of trainable) {
    const t = result[gradients.get(i.name)!]!;
    if (t.dims.join(',') !== i.shape.join(',')) {
      report.failures.push(`${i.name}: gradient shape [${t.dims.join(', ')}], expected [${i.shape.join(', ')}]`);
      continue;
    }
    const analytic = Float64Array.from(t.data as Float32Array | Float64Array);
    report.gradients.set(i.name, analytic);
    for (const k of entriesToCheck(i.data.length, spec.maxEntries ?? 12, rng)) {
      const key = `${i.name}[${k}]`;
      let numeric = spec.numericCache?.get(key);
      if (numeric === undefined) {
        const plus = [...i.data];
        const minus = [...i.data];
        plus[k]! += eps;
        minus[k]! -= eps;
        numeric = ((await lossOf({ name: i.name, data: plus })) - (await lossOf({ name: i.name, data: minus }))) / (2 * eps);
        spec.numericCache?.set(key, numeric);
      }
      const a = analytic[k]!;
      const err = Math.abs(a - numeric);
      report.maxAbsError = Math.max(report.maxAbsError, err);
      report.checked++;
      if (!(err <= atol + rtol * Math.max(Math.abs(a), Math.abs(numeric)))) {
        report.failures.push(`${key}: analytic ${a} vs numeric ${numeric}`);
      }
    }
  }
  return report;
}

/** All entries when few, else a fixed-size random subset (always including the first and last). */
function entriesToCheck(n: number, max: number, rng: { next(): number }): number[] {
  if (n <= max) return Array.from({ length: n }, (_, k) => k);
  const picked = new Set([0, n - 1]);
  while (picked.size < max) picked.add(Math.floor(rng.next() * n));
  return [...picked].sort((a, b) => a - b);
}
