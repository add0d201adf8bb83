import { ModtuneError } from '../errors.js';

export type NumberArray = ArrayLike<number>;

/** Predictions and labels must pair up one to one, and there must be something to score. */
export function checkPaired(name: string, predictions: NumberArray, labels: NumberArray): void {
  if (predictions.length !== labels.length) {
    throw new ModtuneError(`${name}: ${predictions.length} predictions for ${labels.length} labels; expected one prediction per label`);
  }
  if (labels.length === 0) throw new ModtuneError(`${name}: no examples to score`);
}
