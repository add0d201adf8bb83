import { checkPaired, type NumberArray } from './check.js';

/**
 * Pearson correlation. NaN when either side is constant (the correlation is undefined there, as in
 * SciPy); callers comparing scores treat NaN as "not better than anything".
 */
export function pearson(x: NumberArray, y: NumberArray): number {
  checkPaired('Pearson correlation', x, y);
  const n = x.length;
  let mx = 0;
  let my = 0;
  for (let i = 0; i < n; i++) { mx += x[i]!; my += y[i]!; }
  mx /= n;
  my /= n;
  // Two passes (centre first) keep precision when values sit far from zero.
  let sxy = 0;
  let sxx = 0;
  let syy = 0;
  for (let i = 0; i < n; i++) {
    const dx = x[i]! - mx;
    const dy = y[i]! - my;
    sxy += dx * dy;
    sxx += dx * dx;
    syy += dy * dy;
  }
  if (sxx === 0 || syy === 0) return NaN;
  const r = sxy / Math.sqrt(sxx * syy);
  return Math.max(-1, Math.min(1, r));
}

/** 1-based ranks, tied values sharing the average of the ranks they span. */
export function averageRanks(values: NumberArray): Float64Array {
  const n = values.length;
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => values[a]! - values[b]!);
  const ranks = new Float64Array(n);
  let i = 0;
  while (i < n) {
    let j = i;
    while (j + 1 < n && values[order[j + 1]!] === values[order[i]!]) j++;
    const rank = (i + j) / 2 + 1;
    for (let k = i; k <= j; k++) ranks[order[k]!] = rank;
    i = j + 1;
  }
  return ranks;
}

/** Spearman rank correlation: Pearson of the average ranks. NaN when either side is constant. */
export function spearman(x: NumberArray, y: NumberArray): number {
  checkPaired('Spearman correlation', x, y);
  for (let i = 0; i < x.length; i++) if (Number.isNaN(x[i]!) || Number.isNaN(y[i]!)) return NaN;
  return pearson(averageRanks(x), averageRanks(y));
}
