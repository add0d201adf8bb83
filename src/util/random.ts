import { ModtuneError } from '../errors.js';

/**
 * A small seeded pseudo-random generator (xoshiro128**, seeded through splitmix32). The integer
 * stream is pure 32-bit arithmetic, the same on every platform; normals add V8's own (fdlibm-derived)
 * log/sin/cos. The whole state, including the spare normal of a Box-Muller pair, round-trips through
 * `getState`/`fromState`, which checkpoints use for exact resume.
 */
export class Rng {
  private s0 = 0;
  private s1 = 0;
  private s2 = 0;
  private s3 = 0;
  /** Normals come in pairs; the second one waits here. */
  private spare: number | null = null;

  constructor(seed: number) {
    if (!Number.isFinite(seed)) throw new ModtuneError(`random seed must be a finite number, got ${seed}`);
    // Fold both 32-bit halves of the seed in, so seeds above 2^32 still differ.
    const lo = Math.trunc(seed) >>> 0;
    const hi = Math.trunc(seed / 2 ** 32) >>> 0;
    let x = (lo ^ Math.imul(hi, 0x9e3779b1)) >>> 0;
    const mix = () => {
      x = (x + 0x9e3779b9) >>> 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.s0 = mix();
    this.s1 = mix();
    this.s2 = mix();
    this.s3 = mix();
    // An all-zero state would stay zero forever.
    if ((this.s0 | this.s1 | this.s2 | this.s3) === 0) this.s0 = 1;
  }

  /** The next 32 random bits as an unsigned integer. */
  nextUint32(): number {
    const s1 = this.s1;
    const result = Math.imul(rotl(Math.imul(s1, 5), 7), 9) >>> 0;
    const t = s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    return result;
  }

  /** Uniform in [0, 1). */
  next(): number {
    return this.nextUint32() / 4294967296;
  }

  /** Normal deviate (Box-Muller; the pair's second value is kept for the next call). */
  normal(mean = 0, std = 1): number {
    if (this.spare !== null) {
      const z = this.spare;
      this.spare = null;
      return mean + std * z;
    }
    // 1 - u lies in (0, 1], so the log is finite.
    const u1 = 1 - this.next();
    const u2 = this.next();
    const r = Math.sqrt(-2 * Math.log(u1));
    const theta = 2 * Math.PI * u2;
    this.spare = r * Math.sin(theta);
    return mean + std * r * Math.cos(theta);
  }

  /** Fill `out` with normal deviates: the same numbers as calling `normal` once per element. */
  fillNormal(out: Float32Array, mean = 0, std = 1): Float32Array {
    for (let i = 0; i < out.length; i++) out[i] = this.normal(mean, std);
    return out;
  }

  /** Uniform integer in [0, n), without modulo bias. */
  int(n: number): number {
    if (!Number.isInteger(n) || n <= 0 || n > 2 ** 32) throw new ModtuneError(`Rng.int: n must be an integer in [1, 2^32], got ${n}`);
    const limit = 4294967296 - (4294967296 % n);
    for (;;) {
      const x = this.nextUint32();
      if (x < limit) return x % n;
    }
  }

  /** Fisher-Yates shuffle in place; returns `a`. */
  shuffle<T>(a: T[]): T[] {
    for (let i = a.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const tmp = a[i]!;
      a[i] = a[j]!;
      a[j] = tmp;
    }
    return a;
  }

  /** The full state: four 32-bit words, then 1 and the spare normal, or 0 and 0. JSON-safe. */
  getState(): number[] {
    return [this.s0 >>> 0, this.s1 >>> 0, this.s2 >>> 0, this.s3 >>> 0, this.spare === null ? 0 : 1, this.spare ?? 0];
  }

  static fromState(s: number[]): Rng {
    const words = s.slice(0, 4);
    const valid = Array.isArray(s) && (s.length === 4 || s.length === 6) &&
      words.every((w) => Number.isInteger(w) && w >= 0 && w < 2 ** 32) && words.some((w) => w !== 0) &&
      (s.length === 4 || ((s[4] === 0 || s[4] === 1) && Number.isFinite(s[5])));
    if (!valid) throw new ModtuneError(`random generator state must be 4 (or 6) numbers: four non-all-zero 32-bit words, a spare flag and value; got ${JSON.stringify(s)}`);
    const rng = new Rng(0);
    rng.s0 = words[0]! | 0;
    rng.s1 = words[1]! | 0;
    rng.s2 = words[2]! | 0;
    rng.s3 = words[3]! | 0;
    rng.spare = s.length === 6 && s[4] === 1 ? s[5]! : null;
    return rng;
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}
