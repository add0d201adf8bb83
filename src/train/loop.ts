/**
 * The training loop: updates in a seeded data order with the JS learning-rate schedule, evaluation
 * on the dev split(s), the best parameters kept in `best/`, early stopping, checkpoints that resume
 * exactly, and a clean stop on abort (Ctrl-C) or a non-finite loss.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ModtuneError } from '../errors.js';
import { makeBatches, type Batch, type BatchLoader } from '../data/batching.js';
import { createProgress, type Progress } from '../util/progress.js';
import { OutOfMemoryError } from './backends/ort-errors.js';
import type { TensorMap, TrainBackend } from './backends/types.js';
import {
  checkpointsDir, discardAfter, readResumeCheckpoint, stepDirName, writeCheckpoint,
  type BestRecord, type Checkpoint, type CheckpointExpectations, type CheckpointState,
} from './checkpoint.js';
import { EvaluationAbandoned, flattenScores, isImprovement, scoreSplit, type SplitScore } from './evaluate.js';
import type { TrainOptions } from './options.js';
import { prepareRun, type PreparedRun } from './prepare.js';
import {
  appendMetrics, reconcileBest, truncateMetrics, writeBest, writeSummary,
  type EvalRecord, type TrainRecord, type TrainSummary,
} from './run-folder.js';
import { learningRate, type Schedule } from './schedule.js';
import type { EncodedDataset } from '../data/encoded.js';
import { computeFrozenLayers, DEFAULT_CACHE_BUDGET_MB, FrozenCacheAbandoned, layersBelow, planFrozenCache, prefixRuns, type FrozenCachePlan } from './frozen-cache.js';

/** Thrown after an aborted run (Ctrl-C) has written its checkpoint. */
export class TrainInterrupted extends ModtuneError {
  constructor(readonly runDir: string, readonly step: number, readonly totalSteps: number, message?: string) {
    super(message ?? `interrupted at step ${step} of ${totalSteps}; checkpoint saved in ${path.join(checkpointsDir(runDir), stepDirName(step))}. Continue with: modtune train --resume --out ${runDir}`);
    this.name = 'TrainInterrupted';
  }
}

/**
 * Fine-tune: build or open the artifacts, train, evaluate, keep the best, write the run folder.
 * With `resume`, continue the run in `out` from its latest checkpoint; the result is the same as an
 * uninterrupted run (bit for bit on the native backend without dropout).
 */
export async function train(options: TrainOptions): Promise<TrainSummary> {
  const prepared = await prepareRun(options);
  if ('finished' in prepared) {
    options.log?.(`${prepared.finished.runDir}: the run finished already (summary.json); nothing to resume`);
    return prepared.finished;
  }
  try {
    return await runLoop(prepared, options);
  } finally {
    prepared.lock.release();
  }
}

async function runLoop(run: PreparedRun, o: TrainOptions): Promise<TrainSummary> {
  const { runDir, cfg, manifest, task, trainSet, devSets } = run;
  const paramShapes = new Map(manifest.parameters.map((p) => [p.name, p.shape]));
  const log = o.log ?? (() => {});
  const total = cfg.totals.totalSteps;
  const bpe = cfg.totals.batchesPerEpoch;

  let ck: Checkpoint | null = null;
  if (run.resumed) {
    ck = readResumeCheckpoint(runDir, checkpointExpectations(run), log);
    discardAfter(runDir, ck?.state.step ?? null);
    truncateMetrics(runDir, ck?.state.step ?? 0, ck?.state.progress.lastEvalStep ?? 0);
    reconcileBest(runDir, ck?.state.best ?? null);
    log(ck ? `resuming ${runDir} from step ${ck.state.step} of ${total}` : `resuming ${runDir} from the start (no checkpoint was written)`);
    if (ck && ck.state.optimizerStateExact === false) {
      log('note: this checkpoint holds no AdamW moments (the ort-web backend cannot read them back from ONNX Runtime); they restart from zero, while the step and the learning-rate schedule continue');
    }
  }

  // --cache-frozen: the frozen layers run once here; batches then carry their output.
  let cached: { trainSet: EncodedDataset; devSets: typeof devSets; seconds: number; trainSeconds: number } | null = null;
  if (cfg.cacheFrozen) {
    const plan = planFrozenCache(manifest, cfg.artifacts, [trainSet, ...devSets.map((d) => d.dataset)], cfg.cacheBudget ?? DEFAULT_CACHE_BUDGET_MB, log);
    if (plan) cached = await cacheFrozenLayers(plan);
  }
  const loader: BatchLoader = makeBatches(cached?.trainSet ?? trainSet, { batchSize: cfg.batchSize, shuffle: true, seed: cfg.seed, groupByLength: cfg.groupByLength ?? false }, ck?.state.data);
  const schedule: Schedule = { kind: cfg.lrSchedule, peak: cfg.lr, warmupSteps: cfg.totals.warmupSteps, totalSteps: total };
  let backend: TrainBackend;
  try {
    backend = await run.factory.create({
      artifactsDir: cfg.artifacts, manifest, device: cfg.device, threads: cfg.threads ?? undefined, batchSize: cfg.batchSize,
      gradAccum: cfg.gradAccum, step: ck?.state.step ?? 0, seed: cfg.seed, parameters: ck?.parameters, optimizer: ck?.optimizer,
      frozenPrefix: cached !== null,
    });
  } catch (e) {
    // A fresh run that cannot start (no CUDA, unloadable model) leaves nothing behind to trip over.
    if (!run.resumed) fs.rmSync(runDir, { recursive: true, force: true });
    throw e;
  }

  let step = ck?.state.step ?? 0;
  let best: BestRecord | null = ck?.state.best ?? null;
  let lastMetrics: Record<string, number> | null = ck?.state.metrics ?? null;
  let lastEvalStep = ck?.state.progress.lastEvalStep ?? 0;
  let evalsSinceBest = ck?.state.progress.evalsSinceBest ?? 0;
  // The prefix pass over the training examples is training work; over the dev examples, evaluation's.
  let trainSec = (ck?.state.progress.trainSec ?? 0) + (cached?.trainSeconds ?? 0);
  let examples = ck?.state.progress.examples ?? 0;
  let slots = ck?.state.progress.slots ?? 0;
  let tokens = ck?.state.progress.tokens ?? 0;
  const elapsedBase = (ck?.state.progress.elapsedSec ?? 0) + (cached?.seconds ?? 0);
  const started = performance.now();
  const elapsed = () => elapsedBase + (performance.now() - started) / 1000;
  let lastSaved: number | null = ck ? step : null;
  let status: TrainSummary['status'] = 'completed';

  if (!run.resumed) {
    log(`training ${task.name} (${cfg.train}: ${manifest.selection.trainableCount.toLocaleString('en-US')} of ${manifest.selection.totalCount.toLocaleString('en-US')} parameters) on ${trainSet.size} examples: ` +
      `${total} steps of ${cfg.batchSize}×${cfg.gradAccum}, lr ${cfg.lr} (${cfg.lrSchedule}, ${cfg.totals.warmupSteps} warmup), ${cfg.backend} on ${cfg.device}; run folder ${runDir}`);
  }

  const epochNow = () => {
    const s = loader.getState();
    return s.epoch + s.position / bpe;
  };
  const atEpochEnd = () => loader.getState().position === bpe;
  const evalDue = (s: number) => s > 0 && (s === total || (cfg.evalEvery ? s % cfg.evalEvery === 0 : atEpochEnd()));

  const state = (): CheckpointState => ({
    version: 1, step, epoch: epochNow(), data: loader.getState(), rng: { data: loader.getState().rng }, best, metrics: lastMetrics,
    optimizerStateExact: backend.optimizerStateExact ?? true,
    progress: { lastEvalStep, evalsSinceBest, elapsedSec: elapsed(), trainSec, examples, slots, tokens },
  });
  const save = () => {
    const parameters = backend.getParameters();
    const bad = firstNonFinite(parameters);
    if (bad) throw nonFiniteStop(`parameter ${bad} is not finite after step ${step}`, cfg.lr, runDir, lastSaved);
    writeCheckpoint(runDir, { state: state(), parameters, optimizer: backend.getOptimizerState() }, { protect: best ? [best.step] : [], shapes: paramShapes });
    lastSaved = step;
  };

  const progress: Progress | undefined = o.progress ? createProgress({ total, label: 'train', stream: o.progress, unit: 'steps' }) : undefined;
  progress?.update(step);

  try {
    for (;;) {
      if (evalDue(step) && lastEvalStep !== step) {
        let scores: SplitScore[];
        try {
          scores = [];
          for (const d of cached?.devSets ?? devSets) scores.push(await scoreSplit(backend, task, d.split, d.dataset, { batchSize: cfg.batchSize, signal: o.signal }));
        } catch (e) {
          if (e instanceof EvaluationAbandoned) throw interrupt();
          throw e;
        }
        const metrics = flattenScores(scores);
        const main = scores[0]!.main;
        const improved = isImprovement(main, best?.main);
        lastEvalStep = step;
        lastMetrics = metrics;
        if (improved) {
          best = { step, main, metrics };
          evalsSinceBest = 0;
        } else {
          evalsSinceBest++;
        }
        const epoch = epochNow();
        appendMetrics(runDir, scores.map((s): EvalRecord => ({ type: 'eval', step, epoch, split: s.split, metrics: s.metrics, main: s.main, loss: s.loss })));
        log(`eval step ${step} (epoch ${epoch.toFixed(2)}): ${formatMetrics(metrics)}${improved ? ' [best]' : ''}`);
        // A checkpoint at every improvement keeps best/ restorable (see reconcileBest).
        if (cfg.saveEvery === null || improved || step % cfg.saveEvery === 0) save();
        if (improved) writeBest(runDir, backend.getParameters(), best!, paramShapes);
      }
      if (step >= total) break;
      // Checked from the saved counters too, so a run stopped early stays stopped when resumed.
      if (cfg.earlyStop && evalsSinceBest >= cfg.earlyStop) {
        status = 'early-stopped';
        log(`early stop: ${evalsSinceBest} evaluations without improvement (best ${best ? `step ${best.step}` : 'none'})`);
        break;
      }
      if (o.signal?.aborted) throw interrupt();

      const t0 = performance.now();
      const { loss, lr, seen } = await update();
      trainSec += (performance.now() - t0) / 1000;
      if (!Number.isFinite(loss)) throw nonFiniteStop(`the loss is ${loss} at step ${step + 1} (learning rate ${lr.toPrecision(3)})`, cfg.lr, runDir, lastSaved);
      step++;
      examples += seen;
      const record: TrainRecord = { type: 'train', step, epoch: epochNow(), loss, lr, examplesPerSec: trainSec > 0 ? examples / trainSec : 0, elapsedSec: elapsed() };
      appendMetrics(runDir, [record]);
      progress?.update(step, { loss: record.loss, 'ex/s': Math.round(record.examplesPerSec), lr: record.lr.toExponential(2) });
      if (cfg.saveEvery !== null && step % cfg.saveEvery === 0 && !evalDue(step)) save();
      if (o.signal?.aborted) throw interrupt();
    }
    if (lastSaved !== step) save();
    progress?.done();
    const summary: TrainSummary = {
      runDir, task: task.name, selection: cfg.train,
      trainableCount: manifest.selection.trainableCount, totalCount: manifest.selection.totalCount,
      steps: step, epochs: Number(epochNow().toFixed(4)),
      bestStep: best?.step ?? null, bestMetrics: best?.metrics ?? null, finalMetrics: lastMetrics,
      examplesPerSec: trainSec > 0 ? examples / trainSec : 0, paddingShare: slots > 0 ? Number((1 - tokens / slots).toFixed(4)) : 0,
      wallSeconds: elapsed(), backend: cfg.backend, status,
    };
    writeSummary(runDir, summary);
    return summary;
  } catch (e) {
    progress?.done(e instanceof TrainInterrupted ? 'interrupted' : 'stopped');
    // Out of memory before the first checkpoint: the run is retried with other options, so the
    // folder (config and artifacts only) is removed rather than left to block the retry.
    if (e instanceof OutOfMemoryError && !run.resumed && lastSaved === null) fs.rmSync(runDir, { recursive: true, force: true });
    throw e;
  } finally {
    await backend.release();
  }

  /** Counts a training batch's token slots and real tokens (for the padding share). */
  function count(batch: Batch): Batch {
    slots += batch.batch * batch.seqLen;
    for (const m of batch.attentionMask) tokens += Number(m);
    return batch;
  }

  /** One optimizer update over up to gradAccum micro-batches (fewer at the end of an epoch). */
  async function update(): Promise<{ loss: number; lr: number; seen: number }> {
    const s = loader.getState();
    const left = s.position >= bpe ? bpe : bpe - s.position;
    const k = Math.min(cfg.gradAccum, left);
    let lossSum = 0;
    let seen = 0;
    const lr = learningRate(step + 1, schedule);
    for (let i = 0; i < k - 1; i++) {
      const batch = count(loader.next());
      const r = await backend.accumulate(batch);
      if (!Number.isFinite(r.loss)) return { loss: r.loss, lr, seen };
      lossSum += r.loss;
      seen += batch.batch;
    }
    const batch = count(loader.next());
    const r = await backend.trainStep(batch, { learningRate: lr, step: step + 1, gradScale: 1 / k });
    seen += batch.batch;
    return { loss: (lossSum + r.loss) / k, lr, seen };
  }

  async function cacheFrozenLayers(plan: FrozenCachePlan): Promise<NonNullable<typeof cached>> {
    // One progress step per prefix run (a batch).
    const trainRuns = prefixRuns(trainSet.size, cfg.batchSize);
    const runs = trainRuns + devSets.reduce((n, d) => n + prefixRuns(d.dataset.size, cfg.batchSize), 0);
    const bar = o.progress ? createProgress({ total: runs, label: `frozen ${layersBelow(plan.layer)}`, stream: o.progress, unit: 'steps' }) : undefined;
    const pass = { artifactsDir: cfg.artifacts, manifest, device: cfg.device, threads: cfg.threads ?? undefined, batchSize: cfg.batchSize, signal: o.signal };
    const t0 = performance.now();
    try {
      const [train] = await computeFrozenLayers([trainSet], { ...pass, onProgress: (n) => bar?.update(n) });
      const t1 = performance.now();
      const dev = await computeFrozenLayers(devSets.map((d) => d.dataset), { ...pass, onProgress: (n) => bar?.update(trainRuns + n) });
      bar?.done();
      const seconds = (performance.now() - t0) / 1000;
      log(`--cache-frozen: the embeddings and ${layersBelow(plan.layer)} ran once over ${plan.examples} examples in ${seconds.toFixed(1)} s (${(plan.bytes / 1024 / 1024).toFixed(1)} MiB of hidden states kept in memory); every step starts at layer ${plan.layer}`);
      return { trainSet: train!, devSets: devSets.map((d, i) => ({ split: d.split, dataset: dev[i]! })), seconds, trainSeconds: (t1 - t0) / 1000 };
    } catch (e) {
      bar?.done(e instanceof FrozenCacheAbandoned ? 'interrupted' : 'stopped');
      if (e instanceof FrozenCacheAbandoned) {
        const at = ck?.state.step ?? 0;
        throw new TrainInterrupted(runDir, at, total, `interrupted while computing the frozen layers, before step ${at + 1} of ${total}; nothing new to save. Continue with: modtune train --resume --out ${runDir}`);
      }
      // As when the backend cannot start: a fresh run that cannot begin leaves nothing behind.
      if (!run.resumed) fs.rmSync(runDir, { recursive: true, force: true });
      throw e;
    }
  }

  function interrupt(): TrainInterrupted {
    save();
    return new TrainInterrupted(runDir, step, total);
  }
}

function checkpointExpectations(run: PreparedRun): CheckpointExpectations {
  const { manifest, cfg } = run;
  const adamw = manifest.optimizer.name === 'adamw';
  const moments = new Map<string, number>();
  if (adamw) for (const p of manifest.parameters) for (const m of ['exp_avg', 'exp_avg_sq']) moments.set(`${p.name}.${m}`, p.size);
  return { totalSteps: cfg.totals.totalSteps, parameters: manifest.parameters, moments, requireMoments: adamw && cfg.backend === 'native' };
}

function firstNonFinite(params: TensorMap): string | undefined {
  for (const [name, data] of params) {
    for (let i = 0; i < data.length; i++) if (!Number.isFinite(data[i]!)) return name;
  }
  return undefined;
}

function nonFiniteStop(what: string, lr: number, runDir: string, lastSaved: number | null): ModtuneError {
  const kept = lastSaved !== null
    ? `the last good checkpoint (step ${lastSaved}) is kept in ${path.join(checkpointsDir(runDir), stepDirName(lastSaved))}`
    : 'no checkpoint had been written yet';
  return new ModtuneError(`training stopped: ${what}; ${kept}. Try a lower --lr (this run: ${lr})`);
}

export function formatMetrics(m: Record<string, number>): string {
  return Object.entries(m).map(([k, v]) => `${k}=${Number.isFinite(v) ? v.toFixed(4) : String(v)}`).join(' ');
}
