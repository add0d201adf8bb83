/**
 * The safetensors format, in memory: an 8-byte little-endian header length N, N bytes of JSON header
 * (`{"__metadata__": {..}, "<name>": {"dtype", "shape", "data_offsets": [begin, end]}}`, offsets
 * relative to the data that follows), then the tensor bytes. Bytes are untrusted: every length and
 * offset is checked before anything is read. No Node modules, so the browser page parses and writes
 * deltas with the same code (files: ./safetensors.ts).
 */
import { ModtuneError } from '../errors.js';
import { bfloat16ToFloat, floatToHalf, halfToFloat } from '../onnx/dtype.js';
import { numel } from '../onnx/tensor.js';

export interface SafetensorsTensor {
  /** The dtype stored in the file (the data is always float32 here). */
  dtype: string;
  shape: number[];
  data: Float32Array;
}

export interface SafetensorsFile {
  metadata: Record<string, string>;
  tensors: Map<string, SafetensorsTensor>;
}

/** A tensor to write; `dtype` (default F32) is the precision stored in the file. */
export interface SafetensorsInput {
  shape: number[];
  data: Float32Array;
  dtype?: 'F32' | 'F16' | 'BF16';
}

export interface ReadOptions {
  /** Tensors to skip (still bounds-checked, never converted), e.g. integer buffers like `position_ids`. */
  ignore?: (name: string) => boolean;
}

/** Bytes per element of every dtype the format defines. */
const DTYPE_SIZES: Record<string, number> = {
  BOOL: 1, U8: 1, I8: 1, F8_E4M3: 1, F8_E5M2: 1,
  I16: 2, U16: 2, F16: 2, BF16: 2,
  I32: 4, U32: 4, F32: 4,
  I64: 8, U64: 8, F64: 8,
};
export const FLOAT_DTYPES = ['F32', 'F16', 'BF16'];

/** Headers beyond this are refused rather than parsed (the reference implementation's limit). */
const MAX_HEADER_BYTES = 100 * 2 ** 20;

export interface HeaderEntry {
  name: string;
  dtype: string;
  shape: number[];
  begin: number;
  end: number;
}

/** Validate the 8-byte prefix against the file size; returns the header length. */
export function headerLength(prefix: Uint8Array, fileSize: number, label: string): number {
  if (fileSize < 8) throw new ModtuneError(`${label}: ${fileSize} bytes is too short for a safetensors file (8-byte header length expected)`);
  const n = new DataView(prefix.buffer, prefix.byteOffset, 8).getBigUint64(0, true);
  if (n > BigInt(fileSize - 8)) throw new ModtuneError(`${label}: safetensors header length ${n} exceeds the file size (${fileSize} bytes); the file is truncated or not safetensors`);
  if (n > BigInt(MAX_HEADER_BYTES)) throw new ModtuneError(`${label}: safetensors header length ${n} is over the ${MAX_HEADER_BYTES}-byte limit`);
  if (n < 2n) throw new ModtuneError(`${label}: safetensors header length ${n} is too small for a JSON header`);
  return Number(n);
}

/** Parse and check the JSON header against the size of the data section. */
export function parseHeader(headerBytes: Uint8Array, dataLength: number, label: string): { metadata: Record<string, string>; entries: HeaderEntry[] } {
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder().decode(headerBytes));
  } catch (e) {
    throw new ModtuneError(`${label}: safetensors header is not valid JSON (${(e as Error).message})`);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new ModtuneError(`${label}: safetensors header should be a JSON object`);
  const metadata: Record<string, string> = {};
  const entries: HeaderEntry[] = [];
  for (const [name, value] of Object.entries(json as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new ModtuneError(`${label}: safetensors '__metadata__' should be an object of strings`);
      for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
        if (typeof v !== 'string') throw new ModtuneError(`${label}: safetensors metadata '${k}' should be a string, got ${JSON.stringify(v)}`);
        metadata[k] = v;
      }
      continue;
    }
    entries.push(checkEntry(name, value, dataLength, label));
  }
  // Tensors must not share bytes: sort by start and compare each with its predecessor.
  const sorted = [...entries].sort((a, b) => a.begin - b.begin || a.end - b.end);
  for (let i = 1; i < sorted.length; i++) {
    const prev = sorted[i - 1]!;
    const cur = sorted[i]!;
    if (cur.begin < prev.end) {
      throw new ModtuneError(`${label}: tensors '${prev.name}' [${prev.begin}, ${prev.end}) and '${cur.name}' [${cur.begin}, ${cur.end}) overlap`);
    }
  }
  return { metadata, entries };
}

function checkEntry(name: string, value: unknown, dataLength: number, label: string): HeaderEntry {
  const where = `${label}: tensor '${name}'`;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new ModtuneError(`${where}: header entry should be an object with dtype, shape, data_offsets`);
  const v = value as Record<string, unknown>;
  const dtype = v.dtype;
  if (typeof dtype !== 'string' || !Object.hasOwn(DTYPE_SIZES, dtype)) throw new ModtuneError(`${where}: unknown dtype ${JSON.stringify(dtype)}`);
  const shape = v.shape;
  if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    throw new ModtuneError(`${where}: shape should be a list of non-negative integers, got ${JSON.stringify(shape)}`);
  }
  const offsets = v.data_offsets;
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => Number.isSafeInteger(o) && o >= 0)) {
    throw new ModtuneError(`${where}: data_offsets should be [begin, end] non-negative integers, got ${JSON.stringify(offsets)}`);
  }
  const [begin, end] = offsets as [number, number];
  if (begin > end || end > dataLength) {
    throw new ModtuneError(`${where}: data_offsets [${begin}, ${end}) lie outside the data section (${dataLength} bytes)`);
  }
  const expected = numel(shape) * DTYPE_SIZES[dtype]!;
  if (end - begin !== expected) {
    throw new ModtuneError(`${where}: ${end - begin} bytes of data, but ${dtype} [${shape.join(', ')}] needs ${expected}`);
  }
  return { name, dtype, shape: [...shape], begin, end };
}

/** Convert one tensor's bytes to float32 (a view when already F32 and aligned). */
export function toFloat32(e: HeaderEntry, raw: Uint8Array, label: string): Float32Array {
  if (!FLOAT_DTYPES.includes(e.dtype)) {
    throw new ModtuneError(`${label}: tensor '${e.name}' has dtype ${e.dtype}; only ${FLOAT_DTYPES.join(', ')} tensors can be loaded`);
  }
  const n = numel(e.shape);
  // Uint8Array.from copies (Buffer#slice would return a view, still misaligned).
  const aligned = (size: number) => (raw.byteOffset % size === 0 ? raw : Uint8Array.from(raw));
  if (e.dtype === 'F32') {
    const a = aligned(4);
    return new Float32Array(a.buffer, a.byteOffset, n);
  }
  const a = aligned(2);
  const halves = new Uint16Array(a.buffer, a.byteOffset, n);
  const out = new Float32Array(n);
  const convert = e.dtype === 'F16' ? halfToFloat : bfloat16ToFloat;
  for (let i = 0; i < n; i++) out[i] = convert(halves[i]!);
  return out;
}

/** Parse safetensors bytes already in memory. F32 tensors are views into `bytes` where aligned. */
export function parseSafetensors(bytes: Uint8Array, label: string, opts: ReadOptions = {}): SafetensorsFile {
  const n = headerLength(bytes.subarray(0, 8), bytes.byteLength, label);
  const dataStart = 8 + n;
  const { metadata, entries } = parseHeader(bytes.subarray(8, dataStart), bytes.byteLength - dataStart, label);
  const tensors = new Map<string, SafetensorsTensor>();
  for (const e of entries) {
    if (opts.ignore?.(e.name)) continue;
    const raw = bytes.subarray(dataStart + e.begin, dataStart + e.end);
    tensors.set(e.name, { dtype: e.dtype, shape: e.shape, data: toFloat32(e, raw, label) });
  }
  return { metadata, tensors };
}

/**
 * The bytes of a safetensors file holding `tensors` (float32, or F16/BF16 when asked), as pieces to
 * write one after the other: prefix, header, then each tensor's data. `label` names the file in errors.
 */
export function encodeSafetensors(
  tensors: Record<string, SafetensorsInput> | Map<string, SafetensorsInput>,
  metadata: Record<string, string> | undefined,
  label: string,
): Uint8Array[] {
  const list = tensors instanceof Map ? [...tensors] : Object.entries(tensors);
  const header: Record<string, unknown> = {};
  if (metadata && Object.keys(metadata).length) {
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== 'string') throw new ModtuneError(`${label}: safetensors metadata '${k}' must be a string`);
    }
    header.__metadata__ = metadata;
  }
  const payloads: Uint8Array[] = [];
  let offset = 0;
  for (const [name, t] of list) {
    if (name === '__metadata__') throw new ModtuneError(`${label}: '__metadata__' cannot be a tensor name`);
    const n = numel(t.shape);
    if (t.data.length !== n) throw new ModtuneError(`${label}: tensor '${name}' has ${t.data.length} values for shape [${t.shape.join(', ')}] (${n} expected)`);
    const dtype = t.dtype ?? 'F32';
    const bytes = encodeFloats(t.data, dtype);
    header[name] = { dtype, shape: t.shape, data_offsets: [offset, offset + bytes.byteLength] };
    payloads.push(bytes);
    offset += bytes.byteLength;
  }
  // Pad the header with spaces so the data starts 8-byte aligned, as the reference writer does.
  const encoder = new TextEncoder();
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - ((8 + encoder.encode(json).byteLength) % 8)) % 8);
  const headerBytes = encoder.encode(json);
  const prefix = new Uint8Array(8);
  new DataView(prefix.buffer).setBigUint64(0, BigInt(headerBytes.byteLength), true);
  return [prefix, headerBytes, ...payloads];
}

function encodeFloats(data: Float32Array, dtype: 'F32' | 'F16' | 'BF16'): Uint8Array {
  if (dtype === 'F32') return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  const out = new Uint16Array(data.length);
  if (dtype === 'F16') for (let i = 0; i < data.length; i++) out[i] = floatToHalf(data[i]!);
  else for (let i = 0; i < data.length; i++) out[i] = floatToBfloat16(data[i]!);
  return new Uint8Array(out.buffer);
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** float → bfloat16, round-to-nearest-even (NaN stays NaN). */
export function floatToBfloat16(v: number): number {
  f32[0] = v;
  const x = u32[0]!;
  if ((x & 0x7fffffff) > 0x7f800000) return ((x >>> 16) | 0x40) & 0xffff;
  return ((x + 0x7fff + ((x >>> 16) & 1)) >>> 16) & 0xffff;
}

