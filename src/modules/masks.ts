import type { Rng } from '../util/random.js';

/**
 * Entry masks for partial selections. Both kinds treat the matched tensors as one pool of entries
 * (in parameter order, then stored element order) and pick exactly `k` of them; a mask is one byte
 * per stored entry, 1 = trains.
 */

export interface MaskInput {
  name: string;
  values: Float32Array;
}

/**
 * The `k` entries of largest magnitude across all `inputs` (global, not per tensor). Ties at the
 * threshold go to the earliest entries. NaN counts as 0. Two histogram passes over the float bits
 * of |x| (monotone in |x| for non-negative floats) find the exact threshold without sorting or
 * copying the values.
 */
export function topMagnitudeMasks(inputs: MaskInput[], k: number): Map<string, Uint8Array> {
  const keysOf = (v: Float32Array) => new Uint32Array(v.buffer, v.byteOffset, v.length);
  const key = (bits: number) => {
    const a = bits & 0x7fffffff;
    return a > 0x7f800000 ? 0 : a;
  };
  const aligned = inputs.map((i) => ({ name: i.name, values: i.values.byteOffset % 4 === 0 ? i.values : i.values.slice() }));

  const high = new Float64Array(1 << 15);
  for (const { values } of aligned) {
    const bits = keysOf(values);
    for (let j = 0; j < bits.length; j++) high[key(bits[j]!) >>> 16]!++;
  }
  let above = 0;
  let hb = high.length - 1;
  for (; hb > 0 && above + high[hb]! < k; hb--) above += high[hb]!;

  const low = new Float64Array(1 << 16);
  for (const { values } of aligned) {
    const bits = keysOf(values);
    for (let j = 0; j < bits.length; j++) {
      const kk = key(bits[j]!);
      if (kk >>> 16 === hb) low[kk & 0xffff]!++;
    }
  }
  let lb = low.length - 1;
  for (; lb > 0 && above + low[lb]! < k; lb--) above += low[lb]!;
  const threshold = ((hb << 16) | lb) >>> 0;
  let ties = k - above;

  const out = new Map<string, Uint8Array>();
  for (const { name, values } of aligned) {
    const bits = keysOf(values);
    const mask = new Uint8Array(bits.length);
    for (let j = 0; j < bits.length; j++) {
      const kk = key(bits[j]!);
      if (kk > threshold) mask[j] = 1;
      else if (kk === threshold && ties > 0) {
        mask[j] = 1;
        ties--;
      }
    }
    out.set(name, mask);
  }
  return out;
}

/**
 * `k` entries chosen uniformly at random across all tensors (selection sampling: one pass, every
 * k-subset equally likely, exactly k chosen). Reproducible for a given generator state.
 */
export function randomMasks(inputs: { name: string; size: number }[], k: number, rng: Rng): Map<string, Uint8Array> {
  let remaining = inputs.reduce((s, i) => s + i.size, 0);
  let needed = k;
  const out = new Map<string, Uint8Array>();
  for (const { name, size } of inputs) {
    const mask = new Uint8Array(size);
    // Once k are chosen, the rest stay 0 without consuming the generator.
    for (let j = 0; j < size && needed > 0; j++) {
      if (rng.next() * remaining < needed) {
        mask[j] = 1;
        needed--;
      }
      remaining--;
    }
    out.set(name, mask);
  }
  return out;
}

export function countOnes(mask: Uint8Array): number {
  let n = 0;
  for (let i = 0; i < mask.length; i++) n += mask[i]!;
  return n;
}
