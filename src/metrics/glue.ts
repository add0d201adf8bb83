import { ModtuneError } from '../errors.js';
import { getGlueTask, type GlueMetric, type GlueTask } from '../data/glue-tasks.js';
import type { NumberArray } from './check.js';
import { accuracy, f1Score, matthewsCorrelation } from './classification.js';
import { pearson, spearman } from './correlation.js';

const METRICS: Record<GlueMetric, (predictions: NumberArray, labels: NumberArray) => number> = {
  accuracy,
  f1: (p, l) => f1Score(p, l, 1),
  mcc: matthewsCorrelation,
  pearson,
  spearman,
};

/**
 * The GLUE dev metrics of a task, keyed by metric name (`accuracy`, `f1`, `mcc`, `pearson`,
 * `spearman`). Predictions are class indices (in `task.labels` order) or, for STS-B, scores.
 * MNLI is scored per dev set: call once for dev_matched and once for dev_mismatched.
 */
export function taskMetrics(taskName: string | GlueTask, predictions: NumberArray, labels: NumberArray): Record<string, number> {
  const task = getGlueTask(taskName);
  const out: Record<string, number> = {};
  for (const metric of task.metrics) out[metric] = METRICS[metric](predictions, labels);
  return out;
}

/**
 * The task's GLUE score: the unweighted mean of its metrics where GLUE reports two (MRPC and QQP:
 * F1 and accuracy; STS-B: Pearson and Spearman), else its single metric.
 */
export function combinedScore(taskName: string | GlueTask, metrics: Record<string, number>): number {
  const task = getGlueTask(taskName);
  let sum = 0;
  for (const metric of task.metrics) {
    const value = metrics[metric];
    if (value === undefined) throw new ModtuneError(`${task.name} score needs metric '${metric}'; got ${Object.keys(metrics).join(', ') || 'none'}`);
    sum += value;
  }
  return sum / task.metrics.length;
}

/** The task's main metric value out of `taskMetrics`' result. */
export function mainMetric(taskName: string | GlueTask, metrics: Record<string, number>): number {
  const task = getGlueTask(taskName);
  const value = metrics[task.mainMetric];
  if (value === undefined) throw new ModtuneError(`${task.name}: main metric '${task.mainMetric}' missing from ${Object.keys(metrics).join(', ') || 'no metrics'}`);
  return value;
}
