/**
 * The learning rate a run gets when none is given, from how much of the model it trains. Full
 * fine-tuning takes BERT's 2e-5 (Devlin et al.); a selection of a few thousand parameters barely
 * moves at that rate (LayerNorm-only training on SST-2: see README "Learning-rate defaults", measured
 * with scripts/lr-defaults.ts) and needs about 1e-3, as BitFit and LayerNorm tuning use. In between,
 * single modules across all layers take 1e-4.
 */

/** Trainable share (of all parameters) at or below which a selection counts as small. */
export const SMALL_SELECTION_SHARE = 0.005;
/** Trainable share above which a selection is treated like full fine-tuning. */
export const LARGE_SELECTION_SHARE = 0.1;

export const FULL_FINE_TUNING_LR = 2e-5;
export const MODULE_LR = 1e-4;
export const SMALL_SELECTION_LR = 1e-3;

/** The default learning rate for a selection training `trainable` of `total` parameters. */
export function defaultLearningRate(trainable: number, total: number): number {
  const share = total > 0 ? trainable / total : 1;
  if (share <= SMALL_SELECTION_SHARE) return SMALL_SELECTION_LR;
  if (share <= LARGE_SELECTION_SHARE) return MODULE_LR;
  return FULL_FINE_TUNING_LR;
}
