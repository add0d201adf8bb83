/**
 * From a task's logits to what a user reads: the class and its probabilities (softmax), or the
 * regression score. No Node modules: the predictor and the browser page share it.
 */

/** Softmax, stable for large logits (the largest is subtracted first). */
export function softmax(logits: readonly number[]): number[] {
  const max = Math.max(...logits);
  const exps = logits.map((v) => Math.exp(v - max));
  const sum = exps.reduce((a, b) => a + b, 0);
  return exps.map((e) => e / sum);
}

export interface Interpreted {
  /** Class name (classification; the index as a string when the task names no labels), null for regression. */
  label: string | null;
  index: number | null;
  probabilities: number[] | null;
  score: number | null;
}

/** Read `logits` (the task's first numLabels outputs) as a classification or a regression. */
export function interpretLogits(logits: readonly number[], regression: boolean, labels: readonly string[] | null): Interpreted {
  if (regression) return { label: null, index: null, probabilities: null, score: logits[0]! };
  const probabilities = softmax(logits);
  const index = probabilities.indexOf(Math.max(...probabilities));
  return { label: labels?.[index] ?? String(index), index, probabilities, score: null };
}
