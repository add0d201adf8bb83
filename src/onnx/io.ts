import * as fs from 'node:fs';
import * as path from 'node:path';
import onnxPkg from 'onnx-proto';
import { ModtuneError } from '../errors.js';
import { DataType, dataTypeName, elementSize } from './dtype.js';
import { Attr, Dim, Graph, Model, Node, ValueInfo } from './graph.js';
import { Tensor, numel } from './tensor.js';
import { resolveInside } from '../util/inside.js';

const { onnx } = onnxPkg as unknown as { onnx: typeof import('onnx-proto').onnx };
type P = typeof import('onnx-proto').onnx;
type ITensorProto = import('onnx-proto').onnx.ITensorProto;

/**
 * Exact 64-bit value of a protobufjs Long (or number): going through a JS number would round
 * INT64_MAX up to 2^63, which wraps to INT64_MIN in a BigInt64Array.
 */
function bigint64(v: unknown): bigint {
  if (typeof v === 'bigint') return v;
  const l = v as { low?: number; high?: number };
  if (v !== null && typeof v === 'object' && typeof l.low === 'number' && typeof l.high === 'number') {
    return BigInt.asIntN(64, (BigInt(l.high) << 32n) | BigInt(l.low >>> 0));
  }
  return BigInt(Math.trunc(num(v)));
}

/** protobufjs gives int64 as Long objects (or numbers); both become JS numbers here. */
function num(v: unknown): number {
  if (v === null || v === undefined) return 0;
  if (typeof v === 'number') return v;
  if (typeof v === 'bigint') return Number(v);
  const l = v as { toNumber?: () => number };
  if (typeof l.toNumber === 'function') return l.toNumber();
  return Number(v);
}

export interface LoadOptions {
  /** Folder that external-data locations are relative to (default: the model file's folder). */
  baseDir?: string;
  /** Name used in error messages (default: the path). */
  label?: string;
  /**
   * The caller hands the buffer over: misaligned float data may then be slid into alignment inside
   * it (see alignInPlace) instead of copied. Decoding the same buffer again afterwards would read
   * the moved bytes, so only loaders that own a fresh buffer set this.
   */
  ownsBuffer?: boolean;
}

/** Load an ONNX model from a file, resolving external data next to it. */
export function loadModel(file: string, opts: LoadOptions = {}): Model {
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(file);
  } catch (e) {
    throw new ModtuneError(`${file}: cannot read model file (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  return decodeModel(bytes, { baseDir: opts.baseDir ?? path.dirname(path.resolve(file)), label: opts.label ?? file, ownsBuffer: true });
}

/** Decode model bytes. `bytes` is reused: tensor data are views into it (keep it alive, don't mutate). */
export function decodeModel(bytes: Uint8Array, opts: LoadOptions = {}): Model {
  const label = opts.label ?? '<model bytes>';
  if (bytes.byteLength === 0) throw new ModtuneError(`${label}: file is empty, expected an ONNX model`);
  let proto: import('onnx-proto').onnx.ModelProto;
  try {
    const buf = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    proto = onnx.ModelProto.decode(buf);
  } catch (e) {
    throw new ModtuneError(`${label}: not a valid ONNX model (protobuf decode failed: ${(e as Error).message}); the file may be truncated or not ONNX`);
  }
  if (!proto.graph || (!proto.graph.node?.length && !proto.graph.initializer?.length)) {
    throw new ModtuneError(`${label}: not an ONNX model (no graph found)`);
  }
  const ext = new ExternalDataReader(opts.baseDir, label);
  try {
    const graph = graphFromProto(proto.graph, ext, label, !!opts.ownsBuffer);
    return {
      irVersion: num(proto.irVersion),
      opsetImports: (proto.opsetImport ?? []).map((o) => ({ domain: o.domain ?? '', version: num(o.version) })),
      producerName: proto.producerName ?? '',
      producerVersion: proto.producerVersion ?? '',
      domain: proto.domain ?? '',
      modelVersion: num(proto.modelVersion),
      docString: proto.docString ?? '',
      metadata: Object.fromEntries((proto.metadataProps ?? []).map((p) => [p.key ?? '', p.value ?? ''])),
      graph,
      functions: proto.functions?.length ? proto.functions : undefined,
      externalDataFiles: ext.locations.length ? ext.locations : undefined,
    };
  } finally {
    ext.close();
  }
}

/**
 * An external-data `offset`/`length` as onnx reads it: decimal digits only (`"1e1"`, `"0x10"`,
 * `" 5"`, `"-1"` are errors, not numbers JavaScript would happily parse).
 */
function externalDataInt(raw: string | undefined, fallback: number, field: string, tensorName: string, label: string): number {
  if (raw === undefined) return fallback;
  const v = /^[0-9]+$/.test(raw) ? Number(raw) : NaN;
  if (!Number.isSafeInteger(v)) throw new ModtuneError(`${label}: tensor '${tensorName}': external data ${field} ${JSON.stringify(raw)} is not a non-negative decimal integer`);
  return v;
}

/** Reads external tensor data, refusing anything outside the model's folder. */
class ExternalDataReader {
  private files = new Map<string, { fd: number; size: number }>();
  readonly locations: string[] = [];
  constructor(private baseDir: string | undefined, private label: string) {}

  read(tensorName: string, entries: Record<string, string>, byteLength: number): Uint8Array {
    const location = entries.location;
    if (!location) throw new ModtuneError(`${this.label}: tensor '${tensorName}' has external data without a location`);
    if (!this.baseDir) throw new ModtuneError(`${this.label}: tensor '${tensorName}' has external data '${location}' but the model was not loaded from a folder`);
    const resolved = resolveInside(this.baseDir, location, { source: `${this.label}: tensor '${tensorName}': external data location` });
    let f = this.files.get(resolved);
    if (!f) {
      const fd = fs.openSync(resolved, 'r');
      f = { fd, size: fs.fstatSync(fd).size };
      this.files.set(resolved, f);
      this.locations.push(location);
    }
    const offset = externalDataInt(entries.offset, 0, 'offset', tensorName, this.label);
    const length = externalDataInt(entries.length, byteLength, 'length', tensorName, this.label);
    if (length !== byteLength) {
      throw new ModtuneError(`${this.label}: tensor '${tensorName}': external data length ${length} does not match its shape and type (${byteLength} bytes expected)`);
    }
    if (offset + length > f.size) {
      throw new ModtuneError(`${this.label}: tensor '${tensorName}': external data [${offset}, ${offset + length}) lies beyond the end of '${location}' (${f.size} bytes)`);
    }
    // Allocate aligned so that float views need no copy.
    const out = new Uint8Array(length);
    let done = 0;
    while (done < length) {
      const n = fs.readSync(f.fd, out, done, length - done, offset + done);
      if (n <= 0) throw new ModtuneError(`${this.label}: tensor '${tensorName}': short read from '${location}'`);
      done += n;
    }
    return out;
  }

  close(): void {
    for (const f of this.files.values()) fs.closeSync(f.fd);
    this.files.clear();
  }
}

function tensorFromProto(t: ITensorProto, ext: ExternalDataReader | undefined, label: string, inPlace = false): Tensor {
  const name = t.name ?? '';
  const dataType = (t.dataType ?? 0) as DataType;
  const dims = (t.dims ?? []).map(num);
  for (const d of dims) {
    if (!Number.isSafeInteger(d) || d < 0) throw new ModtuneError(`${label}: tensor '${name}' has an invalid dimension ${d}`);
  }
  const n = numel(dims);
  const size = elementSize(dataType);
  const base: Tensor = { name, dataType, dims, raw: new Uint8Array(0), docString: t.docString || undefined };
  if (dataType === DataType.STRING) {
    base.strings = (t.stringData ?? []).map((s) => Buffer.from(s).toString('utf8'));
    return base;
  }
  if (!size) throw new ModtuneError(`${label}: tensor '${name}' has unsupported data type ${dataTypeName(dataType)}`);
  const byteLength = n * size;
  if (t.dataLocation === 1 /* EXTERNAL */) {
    const entries = Object.fromEntries((t.externalData ?? []).map((e) => [e.key ?? '', e.value ?? '']));
    if (!ext) throw new ModtuneError(`${label}: tensor '${name}' uses external data, not allowed here`);
    base.raw = ext.read(name, entries, byteLength);
    return base;
  }
  if (t.rawData && t.rawData.byteLength) {
    if (t.rawData.byteLength !== byteLength) {
      throw new ModtuneError(`${label}: tensor '${name}' has ${t.rawData.byteLength} bytes of data, shape [${dims.join(', ')}] of ${dataTypeName(dataType)} needs ${byteLength}`);
    }
    base.raw = inPlace ? alignInPlace(t.rawData, size) : t.rawData.byteOffset % size === 0 ? t.rawData : new Uint8Array(t.rawData);
    return base;
  }
  // Typed repeated fields (older exporters). Converted to raw little-endian bytes once.
  const fill = (values: ArrayLike<unknown>, Ctor: new (n: number) => { [i: number]: number | bigint; buffer: ArrayBufferLike; byteLength: number }, big = false) => {
    if (values.length !== n) throw new ModtuneError(`${label}: tensor '${name}' has ${values.length} values, shape [${dims.join(', ')}] needs ${n}`);
    const arr = new Ctor(n);
    for (let i = 0; i < n; i++) arr[i] = big ? bigint64(values[i]) : num(values[i]);
    base.raw = new Uint8Array(arr.buffer, 0, arr.byteLength);
  };
  switch (dataType) {
    case DataType.FLOAT: fill(t.floatData ?? [], Float32Array); break;
    case DataType.DOUBLE: fill(t.doubleData ?? [], Float64Array); break;
    case DataType.INT64: fill(t.int64Data ?? [], BigInt64Array, true); break;
    case DataType.UINT64: fill(t.uint64Data ?? [], BigUint64Array, true); break;
    case DataType.INT32: fill(t.int32Data ?? [], Int32Array); break;
    case DataType.INT16: fill(t.int32Data ?? [], Int16Array); break;
    case DataType.UINT16: case DataType.FLOAT16: case DataType.BFLOAT16: fill(t.int32Data ?? [], Uint16Array); break;
    case DataType.INT8: fill(t.int32Data ?? [], Int8Array); break;
    case DataType.UINT8: case DataType.BOOL: fill(t.int32Data ?? [], Uint8Array); break;
    case DataType.UINT32: fill(t.uint64Data ?? [], Uint32Array); break;
    default: throw new ModtuneError(`${label}: tensor '${name}' has unsupported data type ${dataTypeName(dataType)}`);
  }
  return base;
}

/**
 * Make `raw` aligned for `size`-byte elements without copying when we can: protobuf places a bytes
 * field right after its tag and length varint, which the decoder has already consumed, so the
 * element bytes may slide back over those header bytes in the buffer we own. Small fields (header
 * shorter than the shift) are copied instead.
 */
function alignInPlace(raw: Uint8Array, size: number): Uint8Array {
  const mis = raw.byteOffset % size;
  if (mis === 0) return raw;
  const headerBytes = 1 + varintLength(raw.byteLength);
  if (mis <= headerBytes) {
    const whole = new Uint8Array(raw.buffer, raw.byteOffset - mis, raw.byteLength + mis);
    whole.copyWithin(0, mis);
    return new Uint8Array(raw.buffer, raw.byteOffset - mis, raw.byteLength);
  }
  // A copy: `raw` is usually a Node Buffer, whose slice() is a view with the same misalignment.
  return new Uint8Array(raw);
}

function varintLength(n: number): number {
  let len = 1;
  while (n >= 128) { n = Math.floor(n / 128); len++; }
  return len;
}

function attrFromProto(a: import('onnx-proto').onnx.IAttributeProto, label: string): Attr {
  const T = onnx.AttributeProto.AttributeType;
  switch (a.type) {
    case T.FLOAT: return { type: 'float', value: a.f ?? 0 };
    case T.INT: return { type: 'int', value: num(a.i) };
    case T.STRING: return { type: 'string', value: Buffer.from(a.s ?? new Uint8Array()).toString('utf8') };
    case T.TENSOR: return { type: 'tensor', value: tensorFromProto(a.t!, undefined, label) };
    case T.FLOATS: return { type: 'floats', value: [...(a.floats ?? [])] };
    case T.INTS: return { type: 'ints', value: (a.ints ?? []).map(num) };
    case T.STRINGS: return { type: 'strings', value: (a.strings ?? []).map((s) => Buffer.from(s).toString('utf8')) };
    case T.GRAPH: return { type: 'graph', value: a.g };
    default:
      // Untyped attributes from old exporters: infer from the populated field.
      if (a.floats?.length) return { type: 'floats', value: [...a.floats] };
      if (a.ints?.length) return { type: 'ints', value: a.ints.map(num) };
      if (a.t) return { type: 'tensor', value: tensorFromProto(a.t, undefined, label) };
      if (a.s?.length) return { type: 'string', value: Buffer.from(a.s).toString('utf8') };
      if (a.i !== undefined && num(a.i) !== 0) return { type: 'int', value: num(a.i) };
      return { type: 'float', value: a.f ?? 0 };
  }
}

function valueInfoFromProto(v: import('onnx-proto').onnx.IValueInfoProto): ValueInfo {
  const seq = v.type?.sequenceType?.elemType?.tensorType;
  const tt = v.type?.tensorType ?? seq;
  const info: ValueInfo = { name: v.name ?? '', elemType: (tt?.elemType ?? 0) as DataType };
  if (seq && !v.type?.tensorType) info.sequence = true;
  if (tt?.shape) {
    info.shape = (tt.shape.dim ?? []).map((d): Dim => {
      if (d.dimValue !== undefined && d.dimValue !== null && (d as { value?: string }).value !== 'dimParam') {
        const n = num(d.dimValue);
        if (n > 0 || !d.dimParam) return n;
      }
      return d.dimParam ? d.dimParam : null;
    });
  }
  if (v.docString) info.docString = v.docString;
  return info;
}

function graphFromProto(gp: import('onnx-proto').onnx.IGraphProto, ext: ExternalDataReader, label: string, inPlace: boolean): Graph {
  const g = new Graph();
  g.name = gp.name ?? 'graph';
  g.docString = gp.docString ?? '';
  for (const t of gp.initializer ?? []) {
    const tensor = tensorFromProto(t, ext, label, inPlace);
    g.initializers.set(tensor.name, tensor);
  }
  g.inputs = (gp.input ?? []).map(valueInfoFromProto);
  g.outputs = (gp.output ?? []).map(valueInfoFromProto);
  for (const v of gp.valueInfo ?? []) g.valueInfo.set(v.name ?? '', valueInfoFromProto(v));
  g.nodes = (gp.node ?? []).map((n, i): Node => ({
    name: n.name || `${n.opType ?? 'node'}_${i}`,
    opType: n.opType ?? '',
    domain: n.domain ?? '',
    inputs: [...(n.input ?? [])],
    outputs: [...(n.output ?? [])],
    attrs: Object.fromEntries((n.attribute ?? []).map((a) => [a.name ?? '', attrFromProto(a, label)])),
    docString: n.docString || undefined,
  }));
  return g;
}

// ---- writing ---------------------------------------------------------------------------------

/** ONNX's protobuf limit: a single serialized model must stay under 2 GiB. */
const PROTOBUF_LIMIT = 2 ** 31 - 1;

export interface SaveOptions {
  /**
   * Write tensors to a side file: true, false, or 'auto' (default: only when the model would not fit
   * in one protobuf).
   */
  externalData?: boolean | 'auto';
  /** Side file name, relative to the model's folder (default `<model file name>_data`). */
  location?: string;
  /** Tensors smaller than this stay inline (default 1024 bytes). */
  sizeThreshold?: number;
}

function tensorBytes(t: Tensor): number {
  return t.raw.byteLength;
}

/** Save a model; returns the files written. */
export function saveModel(model: Model, file: string, opts: SaveOptions = {}): string[] {
  const total = [...model.graph.initializers.values()].reduce((s, t) => s + tensorBytes(t), 0);
  const useExternal = opts.externalData === true || (opts.externalData !== false && total > PROTOBUF_LIMIT - 64 * 2 ** 20);
  if (opts.externalData === false && total > PROTOBUF_LIMIT - 64 * 2 ** 20) {
    throw new ModtuneError(`${file}: model has ${total} bytes of weights, over ONNX's 2 GiB protobuf limit; save with external data`);
  }
  const written: string[] = [];
  fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  if (!useExternal) {
    writeModelStreaming(file, model);
    return [file];
  }
  const location = opts.location ?? `${path.basename(file)}_data`;
  const dataPath = path.join(path.dirname(path.resolve(file)), location);
  const threshold = opts.sizeThreshold ?? 1024;
  const tmpData = `${dataPath}.tmp-${process.pid}`;
  const fd = fs.openSync(tmpData, 'w');
  const placement = new Map<string, { offset: number; length: number }>();
  try {
    let offset = 0;
    for (const t of model.graph.initializers.values()) {
      if (t.raw.byteLength < threshold) continue;
      const pad = (4096 - (offset % 4096)) % 4096; // page-aligned, as ONNX's own writer does for mmap
      if (pad) { fs.writeSync(fd, new Uint8Array(pad)); offset += pad; }
      let done = 0;
      while (done < t.raw.byteLength) done += fs.writeSync(fd, t.raw, done, t.raw.byteLength - done);
      placement.set(t.name, { offset, length: t.raw.byteLength });
      offset += t.raw.byteLength;
    }
  } finally {
    fs.closeSync(fd);
  }
  const bytes = encodeModel(model, (t) => {
    const p = placement.get(t.name);
    return p ? { location, ...p } : undefined;
  });
  fs.renameSync(tmpData, dataPath);
  writeAtomic(file, bytes);
  written.push(file, dataPath);
  return written;
}

/** Write to a temp file in the same folder, fsync, then rename: readers never see a partial file. */
export function writeAtomic(file: string, data: Uint8Array | string): void {
  writePiecesAtomic(file, [typeof data === 'string' ? Buffer.from(data) : data]);
}

type Placement = (t: Tensor) => { location: string; offset: number; length: number } | undefined;

function tensorToProto(t: Tensor, place?: Placement): import('onnx-proto').onnx.ITensorProto {
  const out: import('onnx-proto').onnx.ITensorProto = { name: t.name, dataType: t.dataType, dims: t.dims };
  if (t.docString) out.docString = t.docString;
  if (t.dataType === DataType.STRING) {
    out.stringData = (t.strings ?? []).map((s) => Buffer.from(s, 'utf8'));
    return out;
  }
  const p = place?.(t);
  if (p) {
    out.dataLocation = 1;
    out.externalData = [
      { key: 'location', value: p.location },
      { key: 'offset', value: String(p.offset) },
      { key: 'length', value: String(p.length) },
    ];
  } else {
    out.rawData = t.raw;
  }
  return out;
}

function attrToProto(name: string, a: Attr): import('onnx-proto').onnx.IAttributeProto {
  const T = onnx.AttributeProto.AttributeType;
  switch (a.type) {
    case 'float': return { name, type: T.FLOAT, f: a.value };
    case 'int': return { name, type: T.INT, i: a.value };
    case 'string': return { name, type: T.STRING, s: Buffer.from(a.value, 'utf8') };
    case 'tensor': return { name, type: T.TENSOR, t: tensorToProto(a.value) };
    case 'floats': return { name, type: T.FLOATS, floats: a.value };
    case 'ints': return { name, type: T.INTS, ints: a.value };
    case 'strings': return { name, type: T.STRINGS, strings: a.value.map((s) => Buffer.from(s, 'utf8')) };
    case 'graph': return { name, type: T.GRAPH, g: a.value as import('onnx-proto').onnx.IGraphProto };
  }
}

function valueInfoToProto(v: ValueInfo): import('onnx-proto').onnx.IValueInfoProto {
  const tensorType: import('onnx-proto').onnx.TypeProto.ITensor = { elemType: v.elemType };
  if (v.shape) {
    tensorType.shape = {
      dim: v.shape.map((d) => (typeof d === 'number' ? { dimValue: d } : typeof d === 'string' ? { dimParam: d } : {})),
    };
  }
  const type = v.sequence ? { sequenceType: { elemType: { tensorType } } } : { tensorType };
  const out: import('onnx-proto').onnx.IValueInfoProto = { name: v.name, type };
  if (v.docString) out.docString = v.docString;
  return out;
}

/** Serialize to bytes (one protobuf; tensors inline unless `place` moves them out). */
export function encodeModel(model: Model, place?: Placement): Uint8Array {
  return onnx.ModelProto.encode(modelToProto(model, place) as import('onnx-proto').onnx.ModelProto).finish();
}

function modelToProto(model: Model, place?: Placement): import('onnx-proto').onnx.IModelProto {
  const g = model.graph;
  const graph: import('onnx-proto').onnx.IGraphProto = {
    name: g.name,
    docString: g.docString || undefined,
    node: g.nodes.map((n) => ({
      name: n.name,
      opType: n.opType,
      domain: n.domain || undefined,
      input: n.inputs,
      output: n.outputs,
      attribute: Object.entries(n.attrs).map(([k, a]) => attrToProto(k, a)),
      docString: n.docString,
    })),
    initializer: [...g.initializers.values()].map((t) => tensorToProto(t, place)),
    input: g.inputs.map(valueInfoToProto),
    output: g.outputs.map(valueInfoToProto),
    valueInfo: [...g.valueInfo.values()].map(valueInfoToProto),
  };
  const proto: import('onnx-proto').onnx.IModelProto = {
    irVersion: model.irVersion,
    opsetImport: model.opsetImports.map((o) => ({ domain: o.domain, version: o.version })),
    producerName: model.producerName,
    producerVersion: model.producerVersion,
    domain: model.domain,
    modelVersion: model.modelVersion,
    docString: model.docString,
    metadataProps: Object.entries(model.metadata).map(([key, value]) => ({ key, value })),
    graph,
    functions: model.functions as import('onnx-proto').onnx.IFunctionProto[] | undefined,
  };
  const total = [...g.initializers.values()].reduce((s, t) => s + (place?.(t) ? 0 : t.raw.byteLength), 0);
  if (total > PROTOBUF_LIMIT) throw new ModtuneError(`model '${g.name}' is over ONNX's 2 GiB protobuf limit; save it with external data`);
  return proto;
}

/** Tensors at least this big are written from their own buffers by `writeModelStreaming`. */
const STREAM_MIN_BYTES = 4096;

function varint(n: number): Uint8Array {
  const out: number[] = [];
  while (n >= 128) { out.push((n % 128) | 128); n = Math.floor(n / 128); }
  out.push(n);
  return Uint8Array.from(out);
}

/**
 * Write the same protobuf as `encodeModel` to `file` (atomically) without assembling it in one
 * buffer: protobufjs encodes everything but the big tensors' raw_data, whose bytes go from the
 * tensors' own buffers straight to the file. Encoding a bert-base in one buffer costs a copy of the
 * whole model in memory and about as long as writing it. Only field order differs from
 * `encodeModel` (the graph last in ModelProto, initializers last in GraphProto, raw_data last in
 * TensorProto), which protobuf parsers accept by definition.
 */
function writeModelStreaming(file: string, model: Model): void {
  const proto = modelToProto(model);
  const graph = proto.graph!;
  const tensorProtos = graph.initializer ?? [];
  graph.initializer = [];
  proto.graph = undefined;
  const modelHead = onnx.ModelProto.encode(proto as import('onnx-proto').onnx.ModelProto).finish();
  const graphHead = onnx.GraphProto.encode(graph as import('onnx-proto').onnx.GraphProto).finish();
  const WIRE_LEN = 2; // length-delimited wire type
  const pieces: Uint8Array[] = [];
  let graphLength = graphHead.byteLength;
  for (const tp of tensorProtos) {
    const raw = tp.rawData as Uint8Array | undefined;
    const chunk: Uint8Array[] = [];
    if (raw && raw.byteLength >= STREAM_MIN_BYTES) {
      delete tp.rawData;
      const head = onnx.TensorProto.encode(tp as import('onnx-proto').onnx.TensorProto).finish();
      chunk.push(head, Uint8Array.of((9 << 3) | WIRE_LEN), varint(raw.byteLength), raw); // TensorProto.raw_data = 9
    } else {
      chunk.push(onnx.TensorProto.encode(tp as import('onnx-proto').onnx.TensorProto).finish());
    }
    const length = chunk.reduce((s, c) => s + c.byteLength, 0);
    const prefix = [Uint8Array.of((5 << 3) | WIRE_LEN), varint(length)]; // GraphProto.initializer = 5
    pieces.push(...prefix, ...chunk);
    graphLength += prefix[0]!.byteLength + prefix[1]!.byteLength + length;
  }
  const all = [modelHead, Uint8Array.of((7 << 3) | WIRE_LEN), varint(graphLength), graphHead, ...pieces]; // ModelProto.graph = 7
  writePiecesAtomic(file, all);
}

/**
 * Write `pieces` one after another to a temporary file beside `file`, fsync, then rename it into
 * place: readers never see a partial file, and a failure leaves no temporary behind.
 */
export function writePiecesAtomic(file: string, pieces: Iterable<Uint8Array>): void {
  const tmp = `${file}.tmp-${process.pid}-${Date.now()}`;
  const fd = fs.openSync(tmp, 'w');
  try {
    for (const piece of pieces) {
      let done = 0;
      while (done < piece.byteLength) done += fs.writeSync(fd, piece, done, piece.byteLength - done);
    }
    fs.fsyncSync(fd);
  } catch (e) {
    fs.closeSync(fd);
    fs.rmSync(tmp, { force: true });
    throw e;
  }
  fs.closeSync(fd);
  fs.renameSync(tmp, file);
}

/** An empty model shell with the given opsets. */
export function newModel(graph: Graph, opset = 17, extra: { domain: string; version: number }[] = []): Model {
  return {
    irVersion: 8,
    opsetImports: [{ domain: '', version: opset }, ...extra],
    producerName: 'modtune',
    producerVersion: '0.1.0',
    domain: '',
    modelVersion: 1,
    docString: '',
    metadata: {},
    graph,
  };
}

export type { P as OnnxProtoNamespace };

/**
 * Save several models that share weights (e.g. the train-step, gradient, eval and inference models
 * of one base) so that every tensor of at least `sizeThreshold` bytes is stored once, in one
 * external-data file beside them. Tensors are matched by their data buffer, so a tensor shared
 * between clones of one graph is written once however many models use it.
 */
export function saveModelsSharedWeights(entries: { model: Model; file: string }[], weightsFile: string, sizeThreshold = 1024): string[] {
  const dir = path.dirname(path.resolve(weightsFile));
  for (const e of entries) {
    if (path.dirname(path.resolve(e.file)) !== dir) throw new ModtuneError(`${e.file}: models sharing weights must be in the folder of ${weightsFile}`);
  }
  fs.mkdirSync(dir, { recursive: true });
  const location = path.basename(weightsFile);
  const placed = new Map<ArrayBufferLike, Map<number, { offset: number; length: number }>>();
  const find = (t: Tensor) => placed.get(t.raw.buffer)?.get(t.raw.byteOffset);
  const tmp = `${weightsFile}.tmp-${process.pid}`;
  const fd = fs.openSync(tmp, 'w');
  try {
    let offset = 0;
    for (const { model } of entries) {
      for (const t of model.graph.initializers.values()) {
        if (t.raw.byteLength < sizeThreshold || t.dataType === DataType.STRING) continue;
        const known = find(t);
        if (known && known.length === t.raw.byteLength) continue;
        const pad = (4096 - (offset % 4096)) % 4096;
        if (pad) { fs.writeSync(fd, new Uint8Array(pad)); offset += pad; }
        let done = 0;
        while (done < t.raw.byteLength) done += fs.writeSync(fd, t.raw, done, t.raw.byteLength - done);
        let byOffset = placed.get(t.raw.buffer);
        if (!byOffset) placed.set(t.raw.buffer, (byOffset = new Map()));
        byOffset.set(t.raw.byteOffset, { offset, length: t.raw.byteLength });
        offset += t.raw.byteLength;
      }
    }
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, weightsFile);
  const written = [weightsFile];
  for (const { model, file } of entries) {
    writeAtomic(file, encodeModel(model, (t) => {
      if (t.raw.byteLength < sizeThreshold) return undefined;
      const p = find(t);
      return p && p.length === t.raw.byteLength ? { location, ...p } : undefined;
    }));
    written.push(file);
  }
  return written;
}
