import { describe, expect, it } from 'vitest';
import { flattenScores, isImprovement } from '../../src/train/evaluate.js';
import { metricsTable } from '../../src/train/report.js';

describe('evaluation bookkeeping', () => {
  it('a NaN metric never counts as better, and anything finite beats a NaN best', () => {
    expect(isImprovement(0.5, undefined)).toBe(true);
    expect(isImprovement(NaN, undefined)).toBe(false);
    expect(isImprovement(NaN, 0.1)).toBe(false);
    expect(isImprovement(-0.2, NaN)).toBe(true);
    expect(isImprovement(0.5, 0.5)).toBe(false);
    expect(isImprovement(0.51, 0.5)).toBe(true);
  });

  it('flattens several dev splits: the first under plain names, the others prefixed', () => {
    const s = (split: string, accuracy: number) => ({ split, metrics: { accuracy }, main: accuracy, loss: 0, examples: 1 });
    expect(flattenScores([s('dev_matched', 0.8), s('dev_mismatched', 0.7)])).toEqual({ accuracy: 0.8, 'dev_mismatched/accuracy': 0.7 });
  });

  it('prints metrics as an aligned table', () => {
    expect(metricsTable([
      { label: 'best (step 8)', metrics: { f1: 0.81234, accuracy: 0.75 } },
      { label: 'final (step 16)', metrics: { f1: NaN, accuracy: 0.7 } },
      { label: 'none', metrics: null },
    ])).toBe([
      '                     f1  accuracy',
      'best (step 8)    0.8123    0.7500',
      'final (step 16)     nan    0.7000',
      'none                  -         -',
    ].join('\n'));
  });
});
