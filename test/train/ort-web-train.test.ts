/**
 * `train()` with `backend: 'ort-web'`: the trainer's loop (data order, schedule, gradient
 * accumulation with a short last update per epoch, evaluation, checkpoints, resume) over the ORT
 * training artifacts gives the native backend's run, and an interrupted run resumes at the right
 * step of the baked learning-rate schedule.
 */
import { describe, expect, it } from 'vitest';
import * as path from 'node:path';
import { readMetrics, readSummary, train, TrainInterrupted, type EvalRecord, type TrainRecord, type TrainOptions } from '../../src/train/index.js';
import { GLUE, tmpDir } from '../helpers/paths.js';
import { maxAbsDiff, paramsOf, tinyArtifacts } from './helpers.js';

const quiet = { cacheDir: false as const, data: GLUE, threads: 1 };
// 40 examples in batches of 8, 2 per update: updates of 2, 2 and 1 micro-batches per epoch.
const run = { task: 'sst2', limitTrain: 40, limitEval: 16, batchSize: 8, gradAccum: 2, epochs: 2 } satisfies TrainOptions;
const TOTAL_STEPS = 6;

function losses(dir: string): number[] {
  return readMetrics(dir).filter((r): r is TrainRecord => r.type === 'train').map((r) => r.loss);
}

function evals(dir: string): EvalRecord[] {
  return readMetrics(dir).filter((r): r is EvalRecord => r.type === 'eval');
}

describe('train() on the ort-web backend', () => {
  it('gives the native backend\'s run: losses, dev metrics, final parameters', async () => {
    // Weight decay 0: with the classifier training, native would decay its weight and ORT (one
    // group-wide value for a mixed selection) would not.
    const artifacts = tinyArtifacts({ task: 'sst2', train: 'layernorm', format: 'both', lr: 1e-2, lrSchedule: 'linear', totalSteps: TOTAL_STEPS, weightDecay: 0 });
    const outs = { native: path.join(tmpDir(), 'native'), ortWeb: path.join(tmpDir(), 'ort-web') };
    await train({ ...quiet, ...run, artifacts, backend: 'native', out: outs.native });
    const summary = await train({ ...quiet, ...run, artifacts, backend: 'ort-web', out: outs.ortWeb });
    expect(summary).toMatchObject({ backend: 'ort-web', steps: TOTAL_STEPS, status: 'completed' });

    const [n, o] = [losses(outs.native), losses(outs.ortWeb)];
    expect(o).toHaveLength(TOTAL_STEPS);
    for (let i = 0; i < n.length; i++) expect(Math.abs(o[i]! - n[i]!) / n[i]!, `step ${i + 1}`).toBeLessThanOrEqual(1e-4);
    const [en, eo] = [evals(outs.native), evals(outs.ortWeb)];
    expect(eo.map((e) => e.step)).toEqual(en.map((e) => e.step));
    expect(eo.map((e) => e.metrics)).toEqual(en.map((e) => e.metrics));
    const params = (dir: string) => paramsOf(path.join(dir, 'checkpoints', `step-${TOTAL_STEPS}`, 'params.safetensors'));
    const moved = maxAbsDiff(params(outs.ortWeb), paramsOf(path.join(artifacts, 'params.safetensors')));
    expect(moved).toBeGreaterThan(1e-3);
    expect(maxAbsDiff(params(outs.native), params(outs.ortWeb))).toBeLessThanOrEqual(1e-5);
  });

  it('resumes an interrupted run at the right step of the baked schedule (SGD: the same result as without the interruption)', async () => {
    const artifacts = tinyArtifacts({ task: 'sst2', train: 'layernorm', format: 'ort', optimizer: 'sgd', lr: 0.5, lrSchedule: 'linear', totalSteps: TOTAL_STEPS, weightDecay: 0 });
    const whole = path.join(tmpDir(), 'whole');
    await train({ ...quiet, ...run, artifacts, backend: 'ort-web', out: whole });

    const parted = path.join(tmpDir(), 'parted');
    // Stop after step 3 (the trainer checks the signal after every step).
    const signal = { get aborted() { return losses(parted).length >= 3; } } as AbortSignal;
    const err = await train({ ...quiet, ...run, artifacts, backend: 'ort-web', out: parted, signal }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TrainInterrupted);
    expect((err as TrainInterrupted).step).toBe(3);
    await train({ ...quiet, resume: true, out: parted });
    expect(readSummary(parted)).toMatchObject({ steps: TOTAL_STEPS, status: 'completed' });

    expect(losses(parted)).toEqual(losses(whole));
    const final = (dir: string) => paramsOf(path.join(dir, 'checkpoints', `step-${TOTAL_STEPS}`, 'params.safetensors'));
    expect(maxAbsDiff(final(whole), final(parted))).toBe(0);
    expect(maxAbsDiff(final(whole), paramsOf(path.join(artifacts, 'params.safetensors')))).toBeGreaterThan(1e-3);
  });
});
