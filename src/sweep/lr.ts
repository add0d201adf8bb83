/**
 * The learning-rate grids of `--lr auto`: small selections need larger rates (BitFit, LayerNorm
 * tuning and linear probes train best around 1e-4…1e-2), large ones the usual fine-tuning rates
 * (1e-5…1e-4). The grid follows the share of the model a selection trains. `--lr default` takes
 * the middle rate of the grid only. This is the one place these rates are defined.
 */

export interface LrGrid {
  /** Selections training at least this share of the model's parameters use `rates`. */
  minShare: number;
  label: string;
  rates: number[];
}

/** Checked from the top; the last grid catches everything smaller. */
export const LR_GRIDS: readonly LrGrid[] = [
  { minShare: 0.01, label: 'large (≥ 1% of the parameters: full, embeddings, attention or FFN matrices)', rates: [1e-5, 3e-5, 1e-4] },
  { minShare: 0.001, label: 'medium (0.1% – 1%: a few matrices, one layer)', rates: [1e-4, 3e-4, 1e-3] },
  { minShare: 0, label: 'small (< 0.1%: LayerNorms, biases, the head, masked subsets)', rates: [1e-3, 3e-3, 1e-2] },
];

export function lrGridFor(trainableCount: number, totalCount: number): LrGrid {
  const share = totalCount > 0 ? trainableCount / totalCount : 0;
  return LR_GRIDS.find((g) => share >= g.minShare)!;
}

/** The rates `--lr auto` tries for a selection of this size. */
export function autoRates(trainableCount: number, totalCount: number): number[] {
  return [...lrGridFor(trainableCount, totalCount).rates];
}

/** The single rate of `--lr default`: the middle of the auto grid. */
export function defaultRate(trainableCount: number, totalCount: number): number {
  const r = lrGridFor(trainableCount, totalCount).rates;
  return r[Math.floor(r.length / 2)]!;
}
