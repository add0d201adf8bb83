/**
 * From cells to the paper's numbers: per (selection, task), the learning rate with the best mean
 * dev score over seeds is chosen (as the paper and BitFit do), and the mean ± standard deviation
 * over seeds at that rate is reported. Every run stays in results.jsonl.
 */
import type { CellResult } from './results.js';

export interface Score {
  selection: string;
  task: string;
  /** The chosen rate, and how many seeds finished at it. */
  lr: number;
  seeds: number;
  mean: number;
  /** Sample standard deviation over seeds (0 with one seed). */
  std: number;
  trainableCount: number;
  totalCount: number;
  /** Mean dev score of every rate tried (the choice is visible in the report). */
  byLr: Array<{ lr: number; mean: number; seeds: number }>;
}

export function mean(xs: number[]): number {
  return xs.reduce((a, b) => a + b, 0) / xs.length;
}

export function sampleStd(xs: number[]): number {
  if (xs.length < 2) return 0;
  const m = mean(xs);
  return Math.sqrt(xs.reduce((a, x) => a + (x - m) ** 2, 0) / (xs.length - 1));
}

/** One Score per (selection, task) with at least one finished cell with a finite score. */
export function aggregate(results: Iterable<CellResult>): Score[] {
  const groups = new Map<string, CellResult[]>();
  for (const r of results) {
    if (r.status !== 'done' || r.mainMetric === null || !Number.isFinite(r.mainMetric)) continue;
    const key = JSON.stringify([r.selection, r.task]);
    let g = groups.get(key);
    if (!g) groups.set(key, (g = []));
    g.push(r);
  }
  const out: Score[] = [];
  for (const g of groups.values()) {
    const lrs = [...new Set(g.map((r) => r.lr))].sort((a, b) => a - b);
    const byLr = lrs.map((lr) => {
      const xs = g.filter((r) => r.lr === lr).map((r) => r.mainMetric!);
      return { lr, mean: mean(xs), seeds: xs.length };
    });
    // Ties go to the smaller rate (listed first).
    const best = byLr.reduce((a, b) => (b.mean > a.mean ? b : a));
    const xs = g.filter((r) => r.lr === best.lr).map((r) => r.mainMetric!);
    out.push({
      selection: g[0]!.selection, task: g[0]!.task, lr: best.lr, seeds: xs.length, mean: best.mean, std: sampleStd(xs),
      trainableCount: g[0]!.trainableCount, totalCount: g[0]!.totalCount, byLr,
    });
  }
  return out;
}

/** `layernorm@3` → 3; `layernorm@last` → the model's last layer. */
export function layerOf(selection: string, numLayers: number): number | null {
  const m = /^layernorm@(\d+|last)$/.exec(selection.trim());
  if (!m) return null;
  return m[1] === 'last' ? numLayers - 1 : Number(m[1]);
}

/** `layernorm:top=10%` → { target: 'layernorm', kind: 'top', amount: '10%' }. */
export function subsetOf(selection: string): { target: string; kind: 'top' | 'random'; amount: string } | null {
  const m = /^([^,:]+):(top|random)=([^,:]+)$/.exec(selection.trim());
  return m ? { target: m[1]!, kind: m[2] as 'top' | 'random', amount: m[3]! } : null;
}
