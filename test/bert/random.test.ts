import { describe, expect, it } from 'vitest';
import { Rng } from '../../src/util/random.js';

describe('Rng', () => {
  it('is deterministic per seed and differs between seeds (also above 2^32)', () => {
    const a = new Rng(42), b = new Rng(42), c = new Rng(43), d = new Rng(42 + 2 ** 32);
    const seq = (r: Rng) => Array.from({ length: 8 }, () => r.nextUint32());
    const sa = seq(a);
    expect(seq(b)).toEqual(sa);
    expect(seq(c)).not.toEqual(sa);
    expect(seq(d)).not.toEqual(sa);
    expect(sa.every((x) => Number.isInteger(x) && x >= 0 && x < 2 ** 32)).toBe(true);
  });

  it('next() is uniform in [0, 1); normal() has the asked mean and std', () => {
    const r = new Rng(1);
    const n = 200_000;
    let s = 0, lo = 1, hi = 0;
    for (let i = 0; i < n; i++) { const u = r.next(); s += u; lo = Math.min(lo, u); hi = Math.max(hi, u); }
    expect(lo).toBeGreaterThanOrEqual(0);
    expect(hi).toBeLessThan(1);
    expect(Math.abs(s / n - 0.5)).toBeLessThan(0.005);
    const z = r.fillNormal(new Float32Array(n), 3, 2);
    let m = 0, v = 0;
    for (const x of z) m += x;
    m /= n;
    for (const x of z) v += (x - m) ** 2;
    expect(Math.abs(m - 3)).toBeLessThan(0.02);
    expect(Math.abs(Math.sqrt(v / n) - 2)).toBeLessThan(0.02);
  });

  it('fillNormal gives the same numbers as repeated normal()', () => {
    const a = new Rng(5), b = new Rng(5);
    const filled = a.fillNormal(new Float32Array(7), 0, 0.02);
    expect(Array.from(filled)).toEqual(Array.from({ length: 7 }, () => Math.fround(b.normal(0, 0.02))));
  });

  it('int(n) stays in range and hits every value; shuffle permutes in place', () => {
    const r = new Rng(9);
    const seen = new Set<number>();
    for (let i = 0; i < 1000; i++) { const k = r.int(7); expect(k).toBeGreaterThanOrEqual(0); expect(k).toBeLessThan(7); seen.add(k); }
    expect(seen.size).toBe(7);
    const a = Array.from({ length: 50 }, (_, i) => i);
    const same = r.shuffle(a);
    expect(same).toBe(a);
    expect([...a].sort((x, y) => x - y)).toEqual(Array.from({ length: 50 }, (_, i) => i));
    expect(a).not.toEqual(Array.from({ length: 50 }, (_, i) => i));
    expect(() => r.int(0)).toThrow(/Rng\.int/);
  });

  it('resumes exactly from getState, even between the two normals of a pair', () => {
    const r = new Rng(77);
    r.normal(); // leaves a spare
    const state = JSON.parse(JSON.stringify(r.getState()));
    const resumed = Rng.fromState(state);
    const tail = (x: Rng) => [x.normal(), x.next(), x.normal(), x.int(1000)];
    expect(tail(resumed)).toEqual(tail(r));
    expect(() => Rng.fromState([0, 0, 0, 0])).toThrow(/random generator state/);
    expect(() => Rng.fromState([1, 2])).toThrow(/random generator state/);
    expect(() => new Rng(NaN)).toThrow(/finite/);
  });
});
