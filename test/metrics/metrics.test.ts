import { describe, expect, it } from 'vitest';
import {
  accuracy, argmaxRows, averageRanks, combinedScore, f1Score, mainMetric, matthewsCorrelation, pearson, spearman, taskMetrics,
} from '../../src/metrics/index.js';
import { ModtuneError } from '../../src/errors.js';

// One small binary example used throughout, worked out by hand:
//   predictions 1 0 1 1 0
//   labels      1 1 1 0 0
//   TP = 2 (rows 0, 2), FN = 1 (row 1), FP = 1 (row 3), TN = 1 (row 4)
const P = [1, 0, 1, 1, 0];
const L = [1, 1, 1, 0, 0];

describe('classification metrics', () => {
  it('accuracy: 3 of 5 right', () => {
    expect(accuracy(P, L)).toBe(3 / 5);
  });

  it('F1 of class 1: 2·TP / (2·TP + FP + FN) = 4 / 6', () => {
    expect(f1Score(P, L)).toBeCloseTo(2 / 3, 15);
    // Of class 0: TP0 = 1 (row 4), FP0 = 1 (row 1), FN0 = 1 (row 3) → 2 / 4.
    expect(f1Score(P, L, 0)).toBeCloseTo(1 / 2, 15);
  });

  it('F1 is 0 when no positive is predicted or present', () => {
    expect(f1Score([0, 0, 0], [0, 0, 0])).toBe(0);
    expect(f1Score([0, 0], [1, 1])).toBe(0);
  });

  it('MCC: (TP·TN − FP·FN) / √((TP+FP)(TP+FN)(TN+FP)(TN+FN)) = (2 − 1) / √(3·3·2·2) = 1/6', () => {
    expect(matthewsCorrelation(P, L)).toBeCloseTo(1 / 6, 15);
    expect(matthewsCorrelation(L, L)).toBe(1);
    expect(matthewsCorrelation(L.map((x) => 1 - x), L)).toBe(-1);
  });

  it('MCC of a constant prediction (or constant labels) is 0', () => {
    expect(matthewsCorrelation([1, 1, 1, 1], [0, 1, 0, 1])).toBe(0);
    expect(matthewsCorrelation([0, 1, 0, 1], [1, 1, 1, 1])).toBe(0);
  });

  it('multi-class MCC (Gorodkin): preds 0 1 2 0, labels 0 1 1 2 → (2·4 − 5) / √((16−6)(16−6)) = 0.3', () => {
    // correct c = 2; predicted counts p = (2, 1, 1); true counts t = (1, 2, 1)
    // Σ p·t = 2 + 2 + 1 = 5; Σ p² = 6; Σ t² = 6; s = 4
    expect(matthewsCorrelation([0, 1, 2, 0], [0, 1, 1, 2])).toBeCloseTo(0.3, 15);
  });

  it('rejects unpaired or empty inputs', () => {
    expect(() => accuracy([1, 0], [1])).toThrow(ModtuneError);
    expect(() => f1Score([], [])).toThrow(/no examples/);
  });

  it('argmaxRows picks the first maximum per row', () => {
    expect(Array.from(argmaxRows(new Float32Array([0.1, 0.9, 3, -1, 2, 2]), 2))).toEqual([1, 0, 0]);
  });
});

describe('correlations', () => {
  it('Pearson: x 1 2 3 4, y 2 4 5 9 → Σdx·dy / √(Σdx² Σdy²) = 11 / √(5·26)', () => {
    // means 2.5 and 5; dx = −1.5 −.5 .5 1.5; dy = −3 −1 0 4
    expect(pearson([1, 2, 3, 4], [2, 4, 5, 9])).toBeCloseTo(11 / Math.sqrt(130), 14);
    expect(pearson([1, 2, 3], [3, 2, 1])).toBeCloseTo(-1, 15);
  });

  it('Pearson keeps precision far from zero (centred sums)', () => {
    const shift = 1e9;
    expect(pearson([1, 2, 3, 4].map((v) => v + shift), [2, 4, 5, 9])).toBeCloseTo(11 / Math.sqrt(130), 6);
  });

  it('Pearson and Spearman of a constant side are NaN', () => {
    expect(pearson([2, 2, 2], [1, 2, 3])).toBeNaN();
    expect(spearman([1, 2, 3], [4, 4, 4])).toBeNaN();
    expect(spearman([1, NaN, 3], [1, 2, 3])).toBeNaN();
  });

  it('average ranks share tied positions', () => {
    // sorted: 10 10 | 20 20 20 | 30 → ranks (1+2)/2, (3+4+5)/3, 6
    expect(Array.from(averageRanks([10, 20, 10, 30, 20, 20]))).toEqual([1.5, 4, 1.5, 6, 4, 4]);
  });

  it('Spearman with ties: ranks x 1 2.5 2.5 4, y 1 3 2 4 → 4.5 / √(4.5·5) = 3/√10', () => {
    expect(spearman([1, 2, 2, 3], [1, 3, 2, 4])).toBeCloseTo(3 / Math.sqrt(10), 14);
    // Monotone but not linear: Spearman 1, Pearson below 1.
    expect(spearman([1, 2, 3, 4], [1, 8, 27, 64])).toBeCloseTo(1, 15);
    expect(pearson([1, 2, 3, 4], [1, 8, 27, 64])).toBeLessThan(0.99);
  });
});

describe('GLUE task metrics', () => {
  it('uses each task\'s metric set', () => {
    expect(taskMetrics('MRPC', P, L)).toEqual({ f1: f1Score(P, L), accuracy: 0.6 });
    expect(taskMetrics('qqp', P, L)).toEqual({ accuracy: 0.6, f1: f1Score(P, L) });
    expect(taskMetrics('cola', P, L)).toEqual({ mcc: matthewsCorrelation(P, L) });
    expect(taskMetrics('sst-2', P, L)).toEqual({ accuracy: 0.6 });
    expect(taskMetrics('MNLI', [0, 1, 2], [0, 2, 2])).toEqual({ accuracy: 2 / 3 });
    for (const t of ['QNLI', 'RTE', 'WNLI']) expect(Object.keys(taskMetrics(t, P, L))).toEqual(['accuracy']);
    const sts = taskMetrics('STS-B', [1, 2, 2, 3], [1, 3, 2, 4]);
    expect(sts.pearson).toBeCloseTo(pearson([1, 2, 2, 3], [1, 3, 2, 4]), 15);
    expect(sts.spearman).toBeCloseTo(3 / Math.sqrt(10), 14);
  });

  it('combinedScore averages the two GLUE metrics, else is the single one', () => {
    expect(combinedScore('MRPC', { f1: 0.9, accuracy: 0.8 })).toBeCloseTo(0.85, 15);
    expect(combinedScore('STS-B', { pearson: 0.88, spearman: 0.86 })).toBeCloseTo(0.87, 15);
    expect(combinedScore('CoLA', { mcc: 0.5 })).toBe(0.5);
    expect(() => combinedScore('QQP', { accuracy: 0.9 })).toThrow(/needs metric 'f1'/);
  });

  it('mainMetric reads the task\'s main metric', () => {
    expect(mainMetric('MRPC', { f1: 0.9, accuracy: 0.8 })).toBe(0.9);
    expect(mainMetric('CoLA', { mcc: 0.4 })).toBe(0.4);
    expect(mainMetric('STS-B', { pearson: 0.7, spearman: 0.6 })).toBe(0.7);
  });
});
