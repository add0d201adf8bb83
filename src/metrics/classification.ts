import { checkPaired, type NumberArray } from './check.js';

/** Fraction of predictions equal to their label. */
export function accuracy(predictions: NumberArray, labels: NumberArray): number {
  checkPaired('accuracy', predictions, labels);
  let correct = 0;
  for (let i = 0; i < labels.length; i++) if (predictions[i] === labels[i]) correct++;
  return correct / labels.length;
}

/**
 * F1 of the positive class (default 1): 2·TP / (2·TP + FP + FN). 0 when there is no positive
 * prediction and no positive label (precision and recall are both undefined; scikit-learn also
 * reports 0 there).
 */
export function f1Score(predictions: NumberArray, labels: NumberArray, positive = 1): number {
  checkPaired('f1', predictions, labels);
  let tp = 0;
  let fp = 0;
  let fn = 0;
  for (let i = 0; i < labels.length; i++) {
    const p = predictions[i] === positive;
    const l = labels[i] === positive;
    if (p && l) tp++;
    else if (p) fp++;
    else if (l) fn++;
  }
  const denominator = 2 * tp + fp + fn;
  return denominator === 0 ? 0 : (2 * tp) / denominator;
}

/**
 * Matthews correlation coefficient, in the multi-class form (Gorodkin's R_K), which reduces to
 * (TP·TN − FP·FN) / √((TP+FP)(TP+FN)(TN+FP)(TN+FN)) for two classes:
 *   (c·s − Σ_k p_k·t_k) / √((s² − Σ p_k²)(s² − Σ t_k²))
 * with s examples, c correct, p_k predicted and t_k true counts of class k. 0 when the denominator
 * is 0 (a constant prediction or a constant label carries no correlation), as scikit-learn does.
 */
export function matthewsCorrelation(predictions: NumberArray, labels: NumberArray): number {
  checkPaired('Matthews correlation', predictions, labels);
  const predicted = new Map<number, number>();
  const actual = new Map<number, number>();
  let correct = 0;
  for (let i = 0; i < labels.length; i++) {
    const p = predictions[i]!;
    const l = labels[i]!;
    predicted.set(p, (predicted.get(p) ?? 0) + 1);
    actual.set(l, (actual.get(l) ?? 0) + 1);
    if (p === l) correct++;
  }
  const s = labels.length;
  let pt = 0;
  for (const [k, pk] of predicted) pt += pk * (actual.get(k) ?? 0);
  let pp = 0;
  for (const pk of predicted.values()) pp += pk * pk;
  let tt = 0;
  for (const tk of actual.values()) tt += tk * tk;
  const denominator = Math.sqrt((s * s - pp) * (s * s - tt));
  return denominator === 0 ? 0 : (correct * s - pt) / denominator;
}

/** The index of the largest entry of each row of a row-major [rows, cols] matrix (first one on ties). */
export function argmaxRows(values: NumberArray, cols: number): Int32Array {
  const rows = Math.floor(values.length / cols);
  const out = new Int32Array(rows);
  for (let r = 0; r < rows; r++) {
    let best = 0;
    let bestValue = values[r * cols]!;
    for (let c = 1; c < cols; c++) {
      const v = values[r * cols + c]!;
      if (v > bestValue) { bestValue = v; best = c; }
    }
    out[r] = best;
  }
  return out;
}
