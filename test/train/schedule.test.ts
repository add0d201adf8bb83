import { describe, expect, it } from 'vitest';
import { learningRate, warmupStepsFor } from '../../src/train/schedule.js';

describe('learning-rate schedule', () => {
  it('linear without warmup: the peak at the first update, then down by peak/total per update to peak/total at the last', () => {
    const s = { kind: 'linear' as const, peak: 1, warmupSteps: 0, totalSteps: 4 };
    expect([1, 2, 3, 4, 5].map((k) => learningRate(k, s))).toEqual([1, 0.75, 0.5, 0.25, 0]);
  });

  it('linear with warmup: a ramp from 0 over the warmup updates, then linear decay reaching 0 at the total', () => {
    const s = { kind: 'linear' as const, peak: 2e-5, warmupSteps: 2, totalSteps: 6 };
    const lrs = [1, 2, 3, 4, 5, 6, 7].map((k) => learningRate(k, s));
    const expected = [0, 1e-5, 2e-5, 1.5e-5, 1e-5, 0.5e-5, 0];
    lrs.forEach((v, i) => expect(v).toBeCloseTo(expected[i]!, 15));
    // Peak exactly once, monotone after it, never negative.
    expect(Math.max(...lrs)).toBe(2e-5);
    for (let i = 3; i < lrs.length; i++) expect(lrs[i]!).toBeLessThan(lrs[i - 1]!);
    expect(learningRate(100, s)).toBe(0);
  });

  it('constant: warmup ramp, then the peak forever', () => {
    const s = { kind: 'constant' as const, peak: 0.1, warmupSteps: 4, totalSteps: 10 };
    const expected = [0, 0.025, 0.05, 0.075, 0.1, 0.1, 0.1];
    [1, 2, 3, 4, 5, 10, 50].forEach((k, i) => expect(learningRate(k, s)).toBeCloseTo(expected[i]!, 15));
    expect(learningRate(1, { ...s, warmupSteps: 0 })).toBe(0.1);
  });

  it('warmup steps round up like Hugging Face, and bad input is refused', () => {
    expect(warmupStepsFor(0.1, 25)).toBe(3);
    expect(warmupStepsFor(0, 25)).toBe(0);
    expect(warmupStepsFor(0.07, 100)).toBe(7); // not 8: 0.07 × 100 is 7.000000000000001 in floats
    expect(() => warmupStepsFor(1.5, 10)).toThrow(/--warmup-ratio/);
    expect(() => learningRate(0, { kind: 'linear', peak: 1, warmupSteps: 0, totalSteps: 1 })).toThrow(/step must be an integer ≥ 1/);
  });
});
