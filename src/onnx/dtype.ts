/** ONNX TensorProto.DataType codes and their JS storage. */
export enum DataType {
  UNDEFINED = 0,
  FLOAT = 1,
  UINT8 = 2,
  INT8 = 3,
  UINT16 = 4,
  INT16 = 5,
  INT32 = 6,
  INT64 = 7,
  STRING = 8,
  BOOL = 9,
  FLOAT16 = 10,
  DOUBLE = 11,
  UINT32 = 12,
  UINT64 = 13,
  COMPLEX64 = 14,
  COMPLEX128 = 15,
  BFLOAT16 = 16,
}

export type TypedArray =
  | Float32Array
  | Float64Array
  | Int8Array
  | Uint8Array
  | Int16Array
  | Uint16Array
  | Int32Array
  | Uint32Array
  | BigInt64Array
  | BigUint64Array;

/** Bytes per element, or 0 where the type has no fixed-size raw encoding here. */
export function elementSize(dt: DataType): number {
  switch (dt) {
    case DataType.FLOAT: case DataType.INT32: case DataType.UINT32: return 4;
    case DataType.DOUBLE: case DataType.INT64: case DataType.UINT64: case DataType.COMPLEX64: return 8;
    case DataType.COMPLEX128: return 16;
    case DataType.FLOAT16: case DataType.BFLOAT16: case DataType.INT16: case DataType.UINT16: return 2;
    case DataType.INT8: case DataType.UINT8: case DataType.BOOL: return 1;
    default: return 0;
  }
}

export function dataTypeName(dt: DataType): string {
  return DataType[dt] ?? `dtype#${dt}`;
}

/** The typed array class that holds `dt` natively (FLOAT16/BFLOAT16 as raw Uint16). */
export function arrayTypeFor(dt: DataType) {
  switch (dt) {
    case DataType.FLOAT: return Float32Array;
    case DataType.DOUBLE: return Float64Array;
    case DataType.INT8: return Int8Array;
    case DataType.UINT8: case DataType.BOOL: return Uint8Array;
    case DataType.INT16: return Int16Array;
    case DataType.UINT16: case DataType.FLOAT16: case DataType.BFLOAT16: return Uint16Array;
    case DataType.INT32: return Int32Array;
    case DataType.UINT32: return Uint32Array;
    case DataType.INT64: return BigInt64Array;
    case DataType.UINT64: return BigUint64Array;
    default: return undefined;
  }
}

/** IEEE half → float. */
export function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0) return s * f * 2 ** -24;
  if (e === 31) return f ? NaN : s * Infinity;
  return s * (1 + f / 1024) * 2 ** (e - 15);
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** float → IEEE half, round-to-nearest-even. */
export function floatToHalf(v: number): number {
  f32[0] = v;
  const x = u32[0]!;
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  let e = exp - 127 + 15;
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let half = mant >> shift;
    const rem = mant & ((1 << shift) - 1);
    const mid = 1 << (shift - 1);
    if (rem > mid || (rem === mid && half & 1)) half++;
    return sign | half;
  }
  let half = (e << 10) | (mant >> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && half & 1)) half++;
  return sign | half;
}

export function bfloat16ToFloat(b: number): number {
  u32[0] = b << 16;
  return f32[0]!;
}
