import { ModtuneError } from '../errors.js';
import { DataType, TypedArray, arrayTypeFor, dataTypeName, elementSize, halfToFloat, bfloat16ToFloat } from './dtype.js';

/**
 * A constant tensor (initializer or attribute). Data is kept as little-endian raw bytes: a view into
 * the loaded file (or external-data file) where possible, never a copy unless alignment forces one.
 */
export interface Tensor {
  name: string;
  dataType: DataType;
  dims: number[];
  /** Little-endian element bytes; `raw.byteLength === numel(dims) * elementSize(dataType)`. */
  raw: Uint8Array;
  /** Only for STRING tensors. */
  strings?: string[];
  docString?: string;
}

export function numel(dims: readonly number[]): number {
  let n = 1;
  for (const d of dims) n *= d;
  return n;
}

/**
 * The tensor's elements as a typed array of its own type (FLOAT16/BFLOAT16: raw Uint16). A view
 * when the bytes are aligned for the element type, else an aligned copy.
 */
export function tensorArray(t: Tensor): TypedArray {
  const Ctor = arrayTypeFor(t.dataType);
  if (!Ctor) throw new ModtuneError(`tensor '${t.name}': data type ${dataTypeName(t.dataType)} has no numeric array form`);
  const size = elementSize(t.dataType);
  const n = t.raw.byteLength / size;
  if (t.raw.byteOffset % size === 0) return new Ctor(t.raw.buffer as ArrayBuffer, t.raw.byteOffset, n);
  const copy = new Uint8Array(t.raw.byteLength);
  copy.set(t.raw);
  return new Ctor(copy.buffer, 0, n);
}

/** Elements converted to float32 (a view for FLOAT tensors). Integer and half types are converted. */
export function tensorFloat32(t: Tensor): Float32Array {
  const a = tensorArray(t);
  if (a instanceof Float32Array) return a;
  const out = new Float32Array(a.length);
  if (t.dataType === DataType.FLOAT16) for (let i = 0; i < a.length; i++) out[i] = halfToFloat(a[i] as number);
  else if (t.dataType === DataType.BFLOAT16) for (let i = 0; i < a.length; i++) out[i] = bfloat16ToFloat(a[i] as number);
  else for (let i = 0; i < a.length; i++) out[i] = Number(a[i]);
  return out;
}

/** Elements as JS numbers (int64 beyond 2^53 lose precision; fine for shapes/axes/indices). */
export function tensorNumbers(t: Tensor): number[] {
  const a = tensorArray(t);
  const out = new Array<number>(a.length);
  if (t.dataType === DataType.FLOAT16) for (let i = 0; i < a.length; i++) out[i] = halfToFloat(a[i] as number);
  else for (let i = 0; i < a.length; i++) out[i] = Number(a[i]);
  return out;
}

/** Make a tensor that owns (views) the given typed array's bytes. */
export function makeTensor(name: string, dataType: DataType, dims: readonly number[], data: TypedArray | number[]): Tensor {
  const Ctor = arrayTypeFor(dataType);
  if (!Ctor) throw new ModtuneError(`makeTensor '${name}': unsupported data type ${dataTypeName(dataType)}`);
  let arr: TypedArray;
  if (Array.isArray(data)) {
    arr = Ctor === BigInt64Array || Ctor === BigUint64Array
      ? new (Ctor as typeof BigInt64Array)(data.map((v) => BigInt(Math.trunc(v))))
      : new (Ctor as typeof Float32Array)(data);
  } else {
    arr = data;
  }
  const n = numel(dims);
  if (arr.length !== n) {
    throw new ModtuneError(`makeTensor '${name}': ${arr.length} elements for shape [${dims.join(', ')}] (${n} expected)`);
  }
  return { name, dataType, dims: [...dims], raw: new Uint8Array(arr.buffer, arr.byteOffset, arr.byteLength) };
}

export const scalarF32 = (name: string, v: number, dims: number[] = []) => makeTensor(name, DataType.FLOAT, dims, new Float32Array([v]));
export const int64s = (name: string, v: readonly number[], dims: number[] = [v.length]) =>
  makeTensor(name, DataType.INT64, dims, new BigInt64Array(v.map((x) => BigInt(x))));
