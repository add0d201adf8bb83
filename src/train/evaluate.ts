import { ModtuneError } from '../errors.js';
import { makeBatches } from '../data/batching.js';
import type { EncodedDataset } from '../data/encoded.js';
import type { GlueTask } from '../data/glue-tasks.js';
import { argmaxRows } from '../metrics/classification.js';
import { mainMetric, taskMetrics } from '../metrics/glue.js';
import type { TrainBackend } from './backends/types.js';

/** Thrown when an abort signal stops an evaluation between batches. */
export class EvaluationAbandoned extends Error {
  constructor() {
    super('evaluation abandoned');
    this.name = 'EvaluationAbandoned';
  }
}

export interface Predictions {
  /** Class indices (classification) or scores (regression), in dataset order. */
  predictions: Float64Array;
  /** Raw model outputs, row-major [size, outputs]. */
  logits: Float32Array;
  outputs: number;
  /** Mean loss over the examples (NaN for unlabelled data). */
  loss: number;
}

/** Run the eval model over a dataset in order: argmax per row for classification, the raw score for regression. */
export async function predict(
  backend: TrainBackend,
  ds: EncodedDataset,
  opts: { batchSize: number; regression: boolean; signal?: AbortSignal },
): Promise<Predictions> {
  const loader = makeBatches(ds, { batchSize: opts.batchSize, shuffle: false });
  let logits: Float32Array | undefined;
  let outputs = 0;
  let lossSum = 0;
  for (const batch of loader) {
    if (opts.signal?.aborted) throw new EvaluationAbandoned();
    const out = await backend.evaluate(batch);
    const cols = out.logits.length / batch.batch;
    if (!logits) {
      outputs = cols;
      logits = new Float32Array(ds.size * cols);
    } else if (cols !== outputs) {
      throw new ModtuneError(`eval model returned ${cols} outputs per example after ${outputs} before`);
    }
    batch.indices.forEach((example, row) => logits!.set(out.logits.subarray(row * cols, (row + 1) * cols), example * cols));
    lossSum += out.loss * batch.batch;
  }
  logits ??= new Float32Array(0);
  let predictions: Float64Array;
  if (opts.regression) {
    if (outputs !== 1) throw new ModtuneError(`a regression model has 1 output per example, this one has ${outputs}`);
    predictions = Float64Array.from(logits);
  } else {
    predictions = Float64Array.from(argmaxRows(logits, outputs));
  }
  return { predictions, logits, outputs, loss: lossSum / ds.size };
}

export interface SplitScore {
  split: string;
  metrics: Record<string, number>;
  main: number;
  loss: number;
  examples: number;
}

/** A labelled split's GLUE metrics. */
export async function scoreSplit(
  backend: TrainBackend,
  task: GlueTask,
  split: string,
  ds: EncodedDataset,
  opts: { batchSize: number; signal?: AbortSignal },
): Promise<SplitScore> {
  if (!ds.labels) throw new ModtuneError(`${task.name} ${split} has no labels to score against`);
  const p = await predict(backend, ds, { ...opts, regression: task.regression });
  const metrics = taskMetrics(task, p.predictions, ds.labels);
  return { split, metrics, main: mainMetric(task, metrics), loss: p.loss, examples: ds.size };
}

/**
 * Metrics of several dev splits as one flat record: the first split's metrics under their own names
 * (`accuracy`), the others' prefixed with the split (`dev_mismatched/accuracy`). The first split
 * also decides the best checkpoint.
 */
export function flattenScores(scores: SplitScore[]): Record<string, number> {
  const out: Record<string, number> = {};
  scores.forEach((s, i) => {
    for (const [k, v] of Object.entries(s.metrics)) out[i === 0 ? k : `${s.split}/${k}`] = v;
  });
  return out;
}

/** A NaN metric (e.g. Pearson of constant predictions) never counts as an improvement. */
export function isImprovement(main: number, best: number | undefined | null): boolean {
  if (!Number.isFinite(main)) return false;
  return best === undefined || best === null || !Number.isFinite(best) || main > best;
}
