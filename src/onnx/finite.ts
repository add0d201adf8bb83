/**
 * NaN or infinite weights make every output NaN, silently: a model file (a download, a merge, a
 * checkpoint converted elsewhere) is checked once when it is loaded or built, and the first bad
 * tensor is named.
 */
import { ModtuneError } from '../errors.js';
import { DataType } from './dtype.js';
import type { Model } from './graph.js';
import { tensorArray } from './tensor.js';

/** An IEEE half or bfloat16 whose exponent bits are all ones is Inf or NaN. */
const HALF_EXPONENT = 0x7c00;
const BF16_EXPONENT = 0x7f80;

/** Index of the first non-finite entry of a float tensor, or -1. */
function firstNonFinite(data: ArrayLike<number>, exponentMask?: number): number {
  if (exponentMask !== undefined) {
    for (let i = 0; i < data.length; i++) if ((data[i]! & exponentMask) === exponentMask) return i;
    return -1;
  }
  for (let i = 0; i < data.length; i++) {
    const v = data[i]!;
    // v - v is NaN exactly for NaN and ±Inf; cheaper than Number.isFinite in this hot loop.
    if (v - v !== 0) return i;
  }
  return -1;
}

/** Throw naming the first float initializer holding a NaN or ±Inf. */
export function checkFiniteWeights(model: Model, label: string): void {
  for (const t of model.graph.initializers.values()) {
    let at = -1;
    switch (t.dataType) {
      case DataType.FLOAT: case DataType.DOUBLE: at = firstNonFinite(tensorArray(t) as Float32Array); break;
      case DataType.FLOAT16: at = firstNonFinite(tensorArray(t) as Uint16Array, HALF_EXPONENT); break;
      case DataType.BFLOAT16: at = firstNonFinite(tensorArray(t) as Uint16Array, BF16_EXPONENT); break;
      default: continue;
    }
    if (at >= 0) {
      const v = (tensorArray(t) as ArrayLike<number>)[at];
      const what = t.dataType === DataType.FLOAT || t.dataType === DataType.DOUBLE ? String(v) : 'NaN or Inf';
      throw new ModtuneError(`${label}: weight '${t.name}' holds ${what} at entry ${at}; a model needs finite weights (the file is damaged or the training that made it diverged)`);
    }
  }
}
