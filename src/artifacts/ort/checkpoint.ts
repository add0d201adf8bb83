/**
 * ONNX Runtime on-device-training checkpoints: a FlatBuffers file with identifier `ODTC`, root
 * table `Checkpoint`, version 2 (the only version ORT's loader accepts). Schema (namespace
 * onnxruntime.fbs; field slots follow declaration order):
 *
 *   Checkpoint      { version:int32; module_state:ModuleState; optimizer_groups:[OptimizerGroup]; property_bag:PropertyBag }
 *   ModuleState     { requires_grad_params:[Tensor]; frozen_params:[Tensor]; is_nominal_state:bool; has_external_data:bool }
 *   OptimizerGroup  { group_name:string; step:int64; initial_learning_rate:float; optimizer_states:[ParameterOptimizerState] }
 *   ParameterOptimizerState { param_name:string; momentums:[Tensor] }
 *   PropertyBag     { ints:[IntProperty]; floats:[FloatProperty]; strings:[StringProperty] }
 *   Int/Float/StringProperty { name:string; value:int64|float|string }
 *   Tensor          { name:string; doc_string:string; dims:[int64]; data_type:int32; raw_data:[ubyte];
 *                     string_data:[string]; external_data_offset:int64 = -1 }
 *
 * Big checkpoints keep tensor bytes in `<checkpoint>.data` (ModuleState.has_external_data): every
 * tensor then carries `external_data_offset` instead of raw_data, data aligned to 4 bytes (8 for
 * 64-bit types), as ORT writes them.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Builder } from 'flatbuffers';
import { ModtuneError } from '../../errors.js';
import { DataType, dataTypeName, elementSize } from '../../onnx/dtype.js';
import { numel } from '../../onnx/tensor.js';
import { writeAtomic } from '../../onnx/io.js';
import { CheckedBuffer, Table } from './flatbuffer-reader.js';

export const CHECKPOINT_IDENTIFIER = 'ODTC';
export const CHECKPOINT_VERSION = 2;
/** ORT moves tensor data out of the checkpoint at this size ("1.8 GB"); the FlatBuffers JS builder cannot pass 2 GiB. */
export const EXTERNAL_DATA_THRESHOLD = 1.8e9;

export interface CkptTensor {
  name: string;
  dims: number[];
  /** ONNX TensorProto data type code (DataType). */
  dataType: number;
  /** Little-endian element bytes (empty for nominal checkpoints). Often a view into the file buffer. */
  data: Uint8Array;
  docString?: string;
}

export interface CkptParameterState {
  param: string;
  /** AdamW: `momentum0` (first moment) and `momentum1` (second moment), in that order. */
  momentums: CkptTensor[];
}

export interface CkptOptimizerGroup {
  name: string;
  step: number;
  initialLearningRate: number;
  states: CkptParameterState[];
}

export interface Checkpoint {
  trainable: CkptTensor[];
  frozen: CkptTensor[];
  /** Tensors are named placeholders with no data (ORT's nominal checkpoint, for sizing). */
  isNominal: boolean;
  optimizerGroups: CkptOptimizerGroup[];
  properties: { ints: Record<string, number>; floats: Record<string, number>; strings: Record<string, string> };
}

export function emptyProperties(): Checkpoint['properties'] {
  return { ints: {}, floats: {}, strings: {} };
}

// Field slots, in schema declaration order.
const CKPT = { version: 0, moduleState: 1, optimizerGroups: 2, propertyBag: 3 } as const;
const MODULE = { requiresGrad: 0, frozen: 1, isNominal: 2, hasExternalData: 3 } as const;
const GROUP = { name: 0, step: 1, initialLr: 2, states: 3 } as const;
const PSTATE = { param: 0, momentums: 1 } as const;
const BAG = { ints: 0, floats: 1, strings: 2 } as const;
const PROP = { name: 0, value: 1 } as const;
const TENSOR = { name: 0, docString: 1, dims: 2, dataType: 3, rawData: 4, stringData: 5, externalOffset: 6 } as const;

// ---- reading ---------------------------------------------------------------------------------

export interface ReadCheckpointOptions {
  /** Name used in error messages (default: the path, or '<checkpoint bytes>'). */
  label?: string;
  /**
   * The external data for a checkpoint with has_external_data: its bytes or its path. Default when
   * reading from a path: `<path>.data`. Required when reading such a checkpoint from bytes.
   */
  externalData?: Uint8Array | string;
}

/** Read and validate a checkpoint from a file path or its bytes. Tensor data are views into the buffer. */
export function readCheckpoint(source: Uint8Array | string, opts: ReadCheckpointOptions = {}): Checkpoint {
  let bytes: Uint8Array;
  let label = opts.label ?? (typeof source === 'string' ? source : '<checkpoint bytes>');
  if (typeof source === 'string') {
    bytes = readFile(source, 'checkpoint');
  } else {
    bytes = source;
  }
  const buf = new CheckedBuffer(bytes, label);
  const root = buf.root(CHECKPOINT_IDENTIFIER, 'Checkpoint');
  const version = root.int32(CKPT.version, 'version', 0);
  if (version !== CHECKPOINT_VERSION) {
    throw new ModtuneError(`${label}: checkpoint version ${version} is not supported, expected ${CHECKPOINT_VERSION} (ONNX Runtime ≥ 1.17 format)`);
  }
  const module = root.table(CKPT.moduleState, 'module_state');
  const isNominal = module?.bool(MODULE.isNominal, 'is_nominal_state') ?? false;
  const hasExternal = module?.bool(MODULE.hasExternalData, 'has_external_data') ?? false;

  let external: Uint8Array | undefined;
  if (hasExternal) {
    let src = opts.externalData;
    if (src === undefined && typeof source === 'string') src = `${source}.data`;
    if (src === undefined) throw new ModtuneError(`${label}: checkpoint keeps its tensors in an external data file; pass its bytes or path (externalData)`);
    external = typeof src === 'string' ? readFile(src, 'checkpoint external data') : src;
  }
  const ctx: TensorContext = { buf, label, isNominal, external };

  const trainable = module ? module.tables(MODULE.requiresGrad, 'requires_grad_params').map((t) => readTensor(t, ctx)) : [];
  const frozen = module ? module.tables(MODULE.frozen, 'frozen_params').map((t) => readTensor(t, ctx)) : [];
  const seen = new Set<string>();
  for (const t of [...trainable, ...frozen]) {
    if (seen.has(t.name)) throw new ModtuneError(`${label}: parameter '${t.name}' appears twice in the module state`);
    seen.add(t.name);
  }

  const optimizerGroups = root.tables(CKPT.optimizerGroups, 'optimizer_groups').map((g): CkptOptimizerGroup => {
    const name = required(g.string(GROUP.name, 'group_name'), g, 'group_name', label);
    return {
      name,
      step: g.int64(GROUP.step, 'step', 0),
      initialLearningRate: g.float32(GROUP.initialLr, 'initial_learning_rate', 0),
      states: g.tables(GROUP.states, 'optimizer_states').map((s) => ({
        param: required(s.string(PSTATE.param, 'param_name'), s, 'param_name', label),
        momentums: s.tables(PSTATE.momentums, 'momentums').map((t) => readTensor(t, ctx)),
      })),
    };
  });

  const properties = emptyProperties();
  const bag = root.table(CKPT.propertyBag, 'property_bag');
  if (bag) {
    for (const p of bag.tables(BAG.ints, 'ints')) properties.ints[required(p.string(PROP.name, 'name'), p, 'name', label)] = p.int64(PROP.value, 'value', 0);
    for (const p of bag.tables(BAG.floats, 'floats')) properties.floats[required(p.string(PROP.name, 'name'), p, 'name', label)] = p.float32(PROP.value, 'value', 0);
    for (const p of bag.tables(BAG.strings, 'strings')) properties.strings[required(p.string(PROP.name, 'name'), p, 'name', label)] = p.string(PROP.value, 'value') ?? '';
  }
  return { trainable, frozen, isNominal, optimizerGroups, properties };
}

interface TensorContext {
  buf: CheckedBuffer;
  label: string;
  isNominal: boolean;
  external?: Uint8Array;
}

function required<T>(v: T | undefined, t: Table, field: string, label: string): T {
  if (v === undefined) throw new ModtuneError(`${label}: ${t.what}.${field} is missing`);
  return v;
}

function readTensor(t: Table, ctx: TensorContext): CkptTensor {
  const name = required(t.string(TENSOR.name, 'name'), t, 'name', ctx.label);
  const where = `${ctx.label}: tensor '${name}'`;
  const dims = t.int64s(TENSOR.dims, 'dims');
  if (!dims) throw new ModtuneError(`${where} has no dims`);
  for (const d of dims) if (d < 0) throw new ModtuneError(`${where} has a negative dimension ${d}`);
  const dataType = t.int32(TENSOR.dataType, 'data_type', 0);
  const size = elementSize(dataType as DataType);
  if (!size || dataType === DataType.STRING) {
    throw new ModtuneError(`${where} has data type ${dataTypeName(dataType as DataType)}, expected a fixed-size numeric type`);
  }
  const expected = numel(dims) * size;
  if (!Number.isSafeInteger(expected)) throw new ModtuneError(`${where}: shape [${dims.join(', ')}] is too large`);
  const docString = t.string(TENSOR.docString, 'doc_string');
  const raw = t.bytes(TENSOR.rawData, 'raw_data');
  const extOffset = t.int64(TENSOR.externalOffset, 'external_data_offset', -1);
  let data: Uint8Array;
  if (raw) {
    // Nominal checkpoints carry names and shapes only: empty raw_data is their whole point.
    if (raw.byteLength !== expected && !(raw.byteLength === 0 && ctx.isNominal)) {
      throw new ModtuneError(`${where} has ${raw.byteLength} bytes of data, shape [${dims.join(', ')}] of ${dataTypeName(dataType as DataType)} needs ${expected}`);
    }
    data = raw;
  } else if (extOffset >= 0) {
    if (!ctx.external) throw new ModtuneError(`${where} points into external data, but the checkpoint does not declare has_external_data`);
    if (extOffset + expected > ctx.external.byteLength) {
      throw new ModtuneError(`${where}: external data [${extOffset}, ${extOffset + expected}) lies beyond the end of the ${ctx.external.byteLength}-byte data file`);
    }
    data = ctx.external.subarray(extOffset, extOffset + expected);
  } else if (ctx.isNominal) {
    data = new Uint8Array(0);
  } else {
    throw new ModtuneError(`${where} has neither raw_data nor an external data offset`);
  }
  const out: CkptTensor = { name, dims, dataType, data };
  if (docString) out.docString = docString;
  return out;
}

function readFile(file: string, what: string): Uint8Array {
  try {
    return fs.readFileSync(file);
  } catch (e) {
    throw new ModtuneError(`${file}: cannot read ${what} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
}

// ---- writing ---------------------------------------------------------------------------------

/** Receives tensor bytes for the external data file; returns the offset they were placed at. */
type ExternalSink = (dataType: number, data: Uint8Array) => number;

/** Encode a checkpoint with all tensor data inline. */
export function encodeCheckpoint(ckpt: Checkpoint): Uint8Array {
  return build(ckpt);
}

export interface WriteCheckpointOptions {
  /** Total tensor bytes at which data moves to `<path>.data` (default EXTERNAL_DATA_THRESHOLD). */
  externalDataThreshold?: number;
}

/**
 * Write a checkpoint atomically; tensors go to `<path>.data` when their total size reaches the
 * threshold. Returns the files written.
 */
export function writeCheckpoint(ckpt: Checkpoint, file: string, opts: WriteCheckpointOptions = {}): string[] {
  const threshold = opts.externalDataThreshold ?? EXTERNAL_DATA_THRESHOLD;
  const total = allTensors(ckpt).reduce((s, t) => s + t.data.byteLength, 0);
  fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  const dataFile = `${file}.data`;
  if (total < threshold) {
    writeAtomic(file, build(ckpt));
    // A stale side file from an earlier, bigger save would be harmless to ORT but misleading.
    fs.rmSync(dataFile, { force: true });
    return [file];
  }
  const tmpData = `${dataFile}.tmp-${process.pid}-${Date.now()}`;
  const fd = fs.openSync(tmpData, 'w');
  let bytes: Uint8Array;
  try {
    let pos = 0;
    const zeros = new Uint8Array(8);
    bytes = build(ckpt, (dataType, data) => {
      const align = elementSize(dataType as DataType) === 8 ? 8 : 4;
      const pad = (align - (pos % align)) % align;
      if (pad) pos += fs.writeSync(fd, zeros, 0, pad);
      const at = pos;
      let done = 0;
      while (done < data.byteLength) done += fs.writeSync(fd, data, done, data.byteLength - done);
      pos += done;
      return at;
    });
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmpData, dataFile);
  writeAtomic(file, bytes);
  return [file, dataFile];
}

function allTensors(ckpt: Checkpoint): CkptTensor[] {
  return [...ckpt.trainable, ...ckpt.frozen, ...ckpt.optimizerGroups.flatMap((g) => g.states.flatMap((s) => s.momentums))];
}

function build(ckpt: Checkpoint, external?: ExternalSink): Uint8Array {
  validateForWrite(ckpt);
  const inlineBytes = external ? 0 : allTensors(ckpt).reduce((s, t) => s + t.data.byteLength + 8, 0);
  if (inlineBytes > 2 ** 31 - 2 ** 24) {
    throw new ModtuneError(`checkpoint has ${inlineBytes} bytes of tensor data, too many for one FlatBuffers file; write it with external data`);
  }
  // Allocating the final size up front avoids the builder's grow-by-doubling copies.
  const b = new Builder(inlineBytes + 64 * 1024);

  const tensor = (t: CkptTensor): number => {
    const name = b.createString(t.name);
    const doc = t.docString ? b.createString(t.docString) : 0;
    const dims = int64Vector(b, t.dims);
    const raw = external ? 0 : byteVector(b, t.data, 8);
    const offset = external ? external(t.dataType, t.data) : -1;
    b.startObject(7);
    b.addFieldOffset(TENSOR.name, name, 0);
    if (doc) b.addFieldOffset(TENSOR.docString, doc, 0);
    b.addFieldOffset(TENSOR.dims, dims, 0);
    b.addFieldInt32(TENSOR.dataType, t.dataType, 0);
    if (external) b.addFieldInt64(TENSOR.externalOffset, BigInt(offset), BigInt(-1));
    else b.addFieldOffset(TENSOR.rawData, raw, 0);
    return b.endObject();
  };
  const tables = (offsets: number[]): number => {
    b.startVector(4, offsets.length, 4);
    for (let i = offsets.length - 1; i >= 0; i--) b.addOffset(offsets[i]!);
    return b.endVector();
  };

  const trainable = tables(ckpt.trainable.map(tensor));
  const frozen = tables(ckpt.frozen.map(tensor));
  b.startObject(4);
  b.addFieldOffset(MODULE.requiresGrad, trainable, 0);
  b.addFieldOffset(MODULE.frozen, frozen, 0);
  b.addFieldInt8(MODULE.isNominal, ckpt.isNominal ? 1 : 0, 0);
  b.addFieldInt8(MODULE.hasExternalData, external ? 1 : 0, 0);
  const module = b.endObject();

  const groups = ckpt.optimizerGroups.map((g) => {
    const states = tables(g.states.map((s) => {
      const param = b.createString(s.param);
      const momentums = tables(s.momentums.map(tensor));
      b.startObject(2);
      b.addFieldOffset(PSTATE.param, param, 0);
      b.addFieldOffset(PSTATE.momentums, momentums, 0);
      return b.endObject();
    }));
    const name = b.createString(g.name);
    b.startObject(4);
    b.addFieldOffset(GROUP.name, name, 0);
    b.addFieldInt64(GROUP.step, BigInt(g.step), BigInt(0));
    b.addFieldFloat32(GROUP.initialLr, g.initialLearningRate, 0);
    b.addFieldOffset(GROUP.states, states, 0);
    return b.endObject();
  });
  const groupVector = tables(groups);

  const property = (name: string, addValue: () => void, valueOffset?: number): number => {
    const n = b.createString(name);
    b.startObject(2);
    b.addFieldOffset(PROP.name, n, 0);
    if (valueOffset !== undefined) b.addFieldOffset(PROP.value, valueOffset, 0);
    else addValue();
    return b.endObject();
  };
  const p = ckpt.properties;
  const ints = tables(Object.entries(p.ints).map(([k, v]) => property(k, () => b.addFieldInt64(PROP.value, BigInt(v), BigInt(0)))));
  const floats = tables(Object.entries(p.floats).map(([k, v]) => property(k, () => b.addFieldFloat32(PROP.value, v, 0))));
  const strings = tables(Object.entries(p.strings).map(([k, v]) => property(k, () => undefined, b.createString(v))));
  b.startObject(3);
  b.addFieldOffset(BAG.ints, ints, 0);
  b.addFieldOffset(BAG.floats, floats, 0);
  b.addFieldOffset(BAG.strings, strings, 0);
  const bag = b.endObject();

  b.startObject(4);
  b.addFieldInt32(CKPT.version, CHECKPOINT_VERSION, 0);
  b.addFieldOffset(CKPT.moduleState, module, 0);
  b.addFieldOffset(CKPT.optimizerGroups, groupVector, 0);
  b.addFieldOffset(CKPT.propertyBag, bag, 0);
  b.finish(b.endObject(), CHECKPOINT_IDENTIFIER);
  return b.asUint8Array();
}

/** Refuse checkpoints ORT would reject or misread, with the offending name. */
function validateForWrite(ckpt: Checkpoint): void {
  const names = new Set<string>();
  for (const t of [...ckpt.trainable, ...ckpt.frozen]) {
    check(!names.has(t.name), `checkpoint: parameter '${t.name}' is listed twice`);
    names.add(t.name);
  }
  for (const t of allTensors(ckpt)) {
    const size = elementSize(t.dataType as DataType);
    check(size > 0 && t.dataType !== DataType.STRING, `checkpoint: tensor '${t.name}' has data type ${dataTypeName(t.dataType as DataType)}, expected a fixed-size numeric type`);
    for (const d of t.dims) check(Number.isSafeInteger(d) && d >= 0, `checkpoint: tensor '${t.name}' has an invalid dimension ${d}`);
    const expected = numel(t.dims) * size;
    check(
      t.data.byteLength === expected || (ckpt.isNominal && t.data.byteLength === 0),
      `checkpoint: tensor '${t.name}' has ${t.data.byteLength} bytes, shape [${t.dims.join(', ')}] of ${dataTypeName(t.dataType as DataType)} needs ${expected}`,
    );
  }
  for (const g of ckpt.optimizerGroups) {
    check(Number.isSafeInteger(g.step) && g.step >= 0, `checkpoint: optimizer group '${g.name}' has an invalid step ${g.step}`);
  }
  for (const [k, v] of Object.entries(ckpt.properties.ints)) check(Number.isSafeInteger(v), `checkpoint: int property '${k}' = ${v} is not an integer`);
}

function check(cond: boolean, msg: string): asserts cond {
  if (!cond) throw new ModtuneError(msg);
}

function int64Vector(b: Builder, values: readonly number[]): number {
  b.startVector(8, values.length, 8);
  for (let i = values.length - 1; i >= 0; i--) b.addInt64(BigInt(values[i]!));
  return b.endVector();
}

/**
 * A [ubyte] vector whose first element is aligned to `align` bytes (so float/int64 views of a
 * loaded buffer need no copy); the builder's own createByteVector aligns to 1.
 */
function byteVector(b: Builder, data: Uint8Array, align: number): number {
  b.startVector(1, data.byteLength, align);
  const inner = b as unknown as { bb: { bytes(): Uint8Array; setPosition(p: number): void }; space: number };
  inner.space -= data.byteLength;
  inner.bb.setPosition(inner.space);
  inner.bb.bytes().set(data, inner.space);
  return b.endVector();
}

// ---- conveniences ----------------------------------------------------------------------------

/** A float32 tensor's values (a view when aligned, else a copy). */
export function ckptFloat32(t: CkptTensor): Float32Array {
  if (t.dataType !== DataType.FLOAT) throw new ModtuneError(`checkpoint tensor '${t.name}' is ${dataTypeName(t.dataType as DataType)}, expected FLOAT`);
  const d = t.data;
  if (d.byteOffset % 4 === 0) return new Float32Array(d.buffer, d.byteOffset, d.byteLength / 4);
  return new Float32Array(new Uint8Array(d).buffer); // a copy (Buffer#slice would be a view)
}

/** A float32 checkpoint tensor owning a copy of `values`. */
export function ckptTensorF32(name: string, dims: number[], values: Float32Array): CkptTensor {
  if (values.length !== numel(dims)) throw new ModtuneError(`checkpoint tensor '${name}': ${values.length} values for shape [${dims.join(', ')}]`);
  const copy = new Float32Array(values);
  return { name, dims: [...dims], dataType: DataType.FLOAT, data: new Uint8Array(copy.buffer) };
}
