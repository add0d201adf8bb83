import { ModtuneError } from '../errors.js';

/** Parse a numeric CLI flag, naming the flag in the error. */
export function numberFlag(flag: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n)) throw new ModtuneError(`${flag} should be a number, got '${v}'`);
  return n;
}

export function intFlag(flag: string, v: string | undefined, min = 0): number | undefined {
  const n = numberFlag(flag, v);
  if (n === undefined) return undefined;
  if (!Number.isInteger(n) || n < min) throw new ModtuneError(`${flag} should be an integer ≥ ${min}, got '${v}'`);
  return n;
}

export function choiceFlag<T extends string>(flag: string, v: string | undefined, choices: readonly T[]): T | undefined {
  if (v === undefined) return undefined;
  if (!choices.includes(v as T)) throw new ModtuneError(`${flag} should be one of ${choices.join(', ')}, got '${v}'`);
  return v as T;
}

/** `--max-grad-norm`: a number ≥ 0, or `none` (= 0, no clipping). */
export function maxGradNormFlag(v: string): number {
  const n = v.trim().toLowerCase() === 'none' ? 0 : Number(v);
  if (v.trim() === '' || !Number.isFinite(n) || n < 0) throw new ModtuneError(`--max-grad-norm should be a number ≥ 0 (0 or none: no clipping), got '${v}'`);
  return n;
}
