/**
 * Everything a run needs before its first step: the options resolved (fresh, or taken from the run
 * folder on --resume), the artifacts (built into the run folder when training from a model), the
 * tokenizer and the data. All checks that can fail on bad input happen here, before anything is
 * written, so a mistake costs nothing.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ModtuneError } from '../errors.js';
import { generateArtifacts, readManifest } from '../artifacts/generate.js';
import type { Manifest } from '../artifacts/manifest.js';
import { checkMaxLength } from '../modules/positions.js';
import { checkBakedRate, checkBakedSchedule } from './baked-schedule.js';
import type { EncodedDataset } from '../data/encoded.js';
import { getGlueTask, type GlueTask } from '../data/glue-tasks.js';
import { resolveGlueDir, tokenizerBeside } from '../data/paths.js';
import { loadTokenizer, type BertTokenizer } from '../data/tokenizer.js';
import { VERSION } from '../version.js';
import { defaultThreads, getBackend, type BackendFactory } from './backends/index.js';
import { dataHashes, loadTaskSplit } from './data.js';
import {
  checkBakedOptions, DEFAULTS, resumeMismatches, specSlug, timestamp, validateOptions,
  type RunConfig, type RunTotals, type TrainOptions,
} from './options.js';
import { isRunFolder, readConfig, readSummary, RUN_FOLDER, runArtifactsDir, runFiles, writeConfig, type TrainSummary } from './run-folder.js';
import { acquireFolderLock, checkUnlocked, LOCK_FILE, type FolderLock } from '../util/folder-lock.js';
import { checkOutputFolder, clearFolder, type GuardInput } from '../util/output-guard.js';
import { warmupStepsFor } from './schedule.js';
import { CACHE_FROZEN_NATIVE_ONLY } from './backends/ort-web.js';
import { frozenPrefixOf } from './frozen-cache.js';

export interface PreparedRun {
  runDir: string;
  cfg: RunConfig;
  manifest: Manifest;
  task: GlueTask;
  factory: BackendFactory;
  tokenizer: BertTokenizer;
  trainSet: EncodedDataset;
  devSets: Array<{ split: string; dataset: EncodedDataset }>;
  resumed: boolean;
  /** The run folder's writer lock, held until the run ends (`train` releases it). */
  lock: FolderLock;
}

/** A prepared run, or the summary of a run that --resume finds finished already. */
export async function prepareRun(o: TrainOptions): Promise<PreparedRun | { finished: TrainSummary }> {
  validateOptions(o);
  // The run folder's lock is taken during preparation and handed to the loop; if preparing fails,
  // it is released here.
  const taken: FolderLock[] = [];
  const lock: TakeLock = (dir, command) => {
    const l = acquireFolderLock(dir, command);
    taken.push(l);
    return l;
  };
  try {
    return o.resume ? await prepareResume(o, lock) : await prepareFresh(o, lock);
  } catch (e) {
    for (const l of taken) l.release();
    throw e;
  }
}

type TakeLock = (dir: string, command: string) => FolderLock;

/** Check that an artifacts folder's head fits the task; names both on a mismatch. */
export function checkHeadFitsTask(m: Manifest, task: GlueTask, dir: string): void {
  const head = m.task.head;
  const has = head.kind === 'regression' ? 'a regression head (1 output)' : `a ${head.numLabels}-label classification head${m.task.labels ? ` (${m.task.labels.join(', ')})` : ''}`;
  const wants = task.regression ? 'is a regression task (1 output)' : `has ${task.labels!.length} labels (${task.labels!.join(', ')})`;
  const fits = task.regression ? head.kind === 'regression' : head.kind === 'classification' && head.numLabels === task.labels!.length;
  if (!fits) throw new ModtuneError(`the artifacts in ${dir} have ${has}, but task ${task.name} ${wants}; build artifacts for ${task.name} (modtune train <model.onnx> --task ${task.name} ...)`);
}

function requireTask(o: TrainOptions): GlueTask {
  if (!o.task) throw new ModtuneError('--task NAME is required (a GLUE task: CoLA, SST-2, MRPC, STS-B, QQP, MNLI, QNLI, RTE, WNLI)');
  return getGlueTask(o.task);
}

async function prepareFresh(o: TrainOptions, takeLock: TakeLock): Promise<PreparedRun> {
  const task = requireTask(o);
  if (o.model && o.artifacts) throw new ModtuneError('give either a model (.onnx) or --artifacts DIR, not both');
  if (!o.model && !o.artifacts) throw new ModtuneError('nothing to train: give a model (modtune train <model.onnx> --train SPEC --task NAME) or --artifacts DIR');
  const factory = getBackend(o.backend ?? DEFAULTS.backend);
  if (o.cacheFrozen && factory.format !== 'native') throw new ModtuneError(CACHE_FROZEN_NATIVE_ONLY);

  let manifest: Manifest | undefined;
  let artifactsDir: string | undefined;
  let spec: string;
  let tokenizerFile: string | undefined = o.tokenizer ? path.resolve(o.tokenizer) : undefined;
  if (o.artifacts) {
    artifactsDir = path.resolve(o.artifacts);
    manifest = readManifest(artifactsDir);
    checkBakedOptions(o, manifest, o.artifacts);
    checkHeadFitsTask(manifest, task, o.artifacts);
    if (o.cacheFrozen) frozenPrefixOf(manifest, o.artifacts);
    if (manifest.task.name && manifest.task.name !== task.name) o.log?.(`note: the artifacts were built for ${manifest.task.name}; training them on ${task.name} (same head size)`);
    spec = manifest.selection.spec;
    if (!tokenizerFile) {
      if (!manifest.tokenizer.file) throw new ModtuneError(`the artifacts in ${o.artifacts} name no tokenizer; pass --tokenizer PATH (tokenizer.json or vocab.txt)`);
      tokenizerFile = path.join(artifactsDir, manifest.tokenizer.file);
    }
  } else {
    const model = path.resolve(o.model!);
    if (!fs.existsSync(model)) throw new ModtuneError(`${o.model}: model file not found`);
    if (!o.train) throw new ModtuneError('--train SPEC is required with a model (which modules train, e.g. layernorm, attention@0-5, bias)');
    spec = o.train;
    if (!tokenizerFile) {
      tokenizerFile = tokenizerBeside(model);
      if (!tokenizerFile) throw new ModtuneError(`no tokenizer beside ${o.model} (looked for <model>.tokenizer.json, <model>.vocab.txt, tokenizer.json, vocab.txt); pass --tokenizer PATH`);
    }
  }
  if (!fs.existsSync(tokenizerFile)) throw new ModtuneError(`--tokenizer ${tokenizerFile}: file not found (expected tokenizer.json or vocab.txt)`);

  const runDir = path.resolve(o.out ?? path.join('runs', `${task.name}-${specSlug(spec)}-${timestamp()}`));
  const dataDir = resolveGlueDir(task, { data: o.data });
  // Before anything is loaded: a folder in use, a folder that is or holds an input, or anything
  // but a run folder (and that only with --force) is refused.
  checkUnlocked(runDir);
  const inputs: GuardInput[] = [
    ...(o.model ? [{ path: path.resolve(o.model), what: 'the model' }] : []),
    ...(artifactsDir ? [{ path: artifactsDir, what: 'the artifacts' }] : []),
    { path: tokenizerFile, what: 'the tokenizer' },
    { path: dataDir, what: 'the data' },
  ];
  const state = checkOutputFolder(runDir, RUN_FOLDER, { force: o.force, inputs, hint: 'pass --resume to continue it, ' });

  const maxLength = o.maxLength ?? manifest?.tokenizer.maxLength ?? DEFAULTS.maxLength;
  if (manifest) checkMaxLength(maxLength, manifest.base.maxPositions, '--max-length', `the model of ${o.artifacts}`);
  if (manifest && factory.format === 'ort') checkBakedRate(manifest, o, o.artifacts!);
  const tokenizer = loadTokenizer(tokenizerFile);
  if (manifest) checkVocabulary(tokenizer, tokenizerFile, manifest);
  const { trainSet, devSets } = loadData(task, dataDir, tokenizer, maxLength, o);

  const batchSize = o.batchSize ?? DEFAULTS.batchSize;
  const gradAccum = o.gradAccum ?? DEFAULTS.gradAccum;
  const epochs = o.epochs ?? DEFAULTS.epochs;
  const optimizer = manifest?.optimizer;
  const schedule = optimizer?.schedule;
  const warmupRatio = o.warmupRatio ?? (schedule && schedule.totalSteps > 0 ? schedule.warmupSteps / schedule.totalSteps : DEFAULTS.warmupRatio);
  const totals = computeTotals(trainSet, devSets, { batchSize, gradAccum, epochs, maxSteps: o.maxSteps, warmupRatio });
  if (manifest && factory.format === 'ort') {
    checkBakedSchedule(manifest, { kind: o.lrSchedule ?? schedule!.kind, peak: o.lr ?? optimizer!.lr, warmupSteps: totals.warmupSteps, totalSteps: totals.totalSteps }, o.artifacts!);
  }

  fs.mkdirSync(runDir, { recursive: true });
  const lock = takeLock(runDir, 'modtune train');
  if (state === 'ours' || state === 'partial') clearFolder(runDir, [LOCK_FILE]);
  const cfgBase = {
    lr: o.lr ?? optimizer?.lr ?? DEFAULTS.lr,
    lrSchedule: o.lrSchedule ?? schedule?.kind ?? DEFAULTS.lrSchedule,
  };
  if (!manifest) {
    artifactsDir = runFiles(runDir).artifacts;
    try {
      manifest = generateArtifacts({
        model: o.model!, train: spec, out: artifactsDir, task: task.name, format: factory.format,
        optimizer: o.optimizer ?? DEFAULTS.optimizer, lr: o.lr, lrSchedule: cfgBase.lrSchedule,
        warmupSteps: totals.warmupSteps, totalSteps: totals.totalSteps, weightDecay: o.weightDecay ?? DEFAULTS.weightDecay,
        maxGradNorm: o.maxGradNorm ?? DEFAULTS.maxGradNorm,
        dropout: o.dropout, newHead: o.newHead, freezeHead: o.freezeHead, tokenizer: tokenizerFile, maxLength,
        seed: o.seed ?? DEFAULTS.seed, cacheFrozen: o.cacheFrozen, force: true,
      }).manifest;
      // Without --lr the rate follows the selection's size (artifacts/default-lr.ts).
      cfgBase.lr = manifest.optimizer.lr;
      checkVocabulary(tokenizer, tokenizerFile, manifest);
    } catch (e) {
      fs.rmSync(runDir, { recursive: true, force: true });
      if (e instanceof ModtuneError && /classification head/.test(e.message)) {
        const wants = task.regression ? 'is a regression task' : `has ${task.labels!.length} labels (${task.labels!.join(', ')})`;
        throw new ModtuneError(`task ${task.name} ${wants}: ${e.message}`, { cause: e });
      }
      throw e;
    }
  }

  const cfg: RunConfig = {
    version: 1, modtuneVersion: VERSION, createdAt: new Date().toISOString(),
    task: task.name, model: o.model ? path.resolve(o.model) : null, train: spec,
    artifacts: artifactsDir!, artifactsBuilt: !o.artifacts,
    backend: o.backend ?? DEFAULTS.backend, device: o.device ?? DEFAULTS.device, threads: o.threads ?? defaultThreads(),
    data: dataDir, tokenizer: tokenizerFile,
    epochs, maxSteps: o.maxSteps ?? null, batchSize, gradAccum, groupByLength: !!o.groupByLength, ...cfgBase, warmupRatio,
    weightDecay: manifest.optimizer.weightDecay, maxGradNorm: manifest.optimizer.maxGradNorm ?? 0, optimizer: manifest.optimizer.name, dropout: manifest.dropout.override,
    maxLength, seed: o.seed ?? DEFAULTS.seed,
    evalEvery: o.evalEvery ?? null, earlyStop: o.earlyStop ?? null, saveEvery: o.saveEvery ?? null,
    limitTrain: o.limitTrain ?? null, limitEval: o.limitEval ?? null,
    newHead: !!o.newHead, freezeHead: manifest.selection.freezeHead,
    cacheFrozen: !!o.cacheFrozen, cacheBudget: o.cacheBudget ?? null,
    totals, dataSha256: dataHashes(trainSet, devSets),
  };
  writeConfig(runDir, cfg);
  return { runDir, cfg, manifest, task, factory, tokenizer, trainSet, devSets, resumed: false, lock };
}

async function prepareResume(o: TrainOptions, takeLock: TakeLock): Promise<PreparedRun | { finished: TrainSummary }> {
  if (!o.out) throw new ModtuneError('--resume needs --out RUN_DIR (the run folder to continue)');
  const runDir = path.resolve(o.out);
  checkUnlocked(runDir);
  if (!isRunFolder(runDir)) return resumeUnstarted(o, runDir, takeLock);
  const lock = takeLock(runDir, 'modtune train --resume');
  const saved = readConfig(runDir);
  const task = getGlueTask(saved.task);
  const mismatches = resumeMismatches(o, saved, (t) => getGlueTask(t).name);
  if (mismatches.length) {
    throw new ModtuneError(
      `cannot resume ${o.out}: it was started with a different configuration: ${mismatches.join('; ')}. ` +
        `Resume with the run's own options (just --resume --out ${o.out}) or start a new run with another --out`,
    );
  }
  const finished = readSummary(runDir);
  if (finished) {
    lock.release();
    return { finished };
  }
  const factory = getBackend(saved.backend);
  const artifactsDir = runArtifactsDir(runDir, saved);
  const manifest = readManifest(artifactsDir);
  let tokenizerFile = saved.tokenizer;
  if (!fs.existsSync(tokenizerFile) && manifest.tokenizer.file) tokenizerFile = path.join(artifactsDir, manifest.tokenizer.file);
  const tokenizer = checkVocabulary(loadTokenizer(tokenizerFile), tokenizerFile, manifest);
  const dataDir = o.data ? resolveGlueDir(task, { data: o.data }) : fs.existsSync(saved.data) ? saved.data : resolveGlueDir(task, {});
  const { trainSet, devSets } = loadData(task, dataDir, tokenizer, saved.maxLength, { limitTrain: saved.limitTrain ?? undefined, limitEval: saved.limitEval ?? undefined, cacheDir: o.cacheDir });
  const totals = computeTotals(trainSet, devSets, { batchSize: saved.batchSize, gradAccum: saved.gradAccum, epochs: saved.epochs, maxSteps: saved.maxSteps ?? undefined, warmupRatio: saved.warmupRatio });
  if (JSON.stringify(totals) !== JSON.stringify(saved.totals)) {
    throw new ModtuneError(`cannot resume ${o.out}: the ${task.name} data in ${dataDir} differs from the run's (${saved.totals.trainExamples} training examples then, ${totals.trainExamples} now; dev ${JSON.stringify(saved.totals.evalExamples)} then, ${JSON.stringify(totals.evalExamples)} now)`);
  }
  if (saved.dataSha256) {
    const now = dataHashes(trainSet, devSets);
    const changed = [
      ...(now.train !== saved.dataSha256.train ? [`${task.trainSplit} sha256 ${saved.dataSha256.train.slice(0, 12)}… then, ${now.train.slice(0, 12)}… now`] : []),
      ...Object.entries(now.dev).filter(([s, h]) => saved.dataSha256!.dev[s] !== undefined && saved.dataSha256!.dev[s] !== h).map(([s, h]) => `${s} sha256 ${saved.dataSha256!.dev[s]!.slice(0, 12)}… then, ${h.slice(0, 12)}… now`),
    ];
    if (changed.length) {
      throw new ModtuneError(`cannot resume ${o.out}: the tokenized ${task.name} data in ${dataDir} is not the run's, though as many examples (${changed.join('; ')}); resume with the data the run started with (--data DIR)`);
    }
  }
  const cfg: RunConfig = {
    ...saved,
    artifacts: artifactsDir,
    device: o.device ?? saved.device,
    threads: o.threads ?? saved.threads,
    saveEvery: o.saveEvery ?? saved.saveEvery,
    cacheBudget: o.cacheBudget ?? saved.cacheBudget ?? null,
    data: dataDir,
  };
  return { runDir, cfg, manifest, task, factory, tokenizer, trainSet, devSets, resumed: true, lock };
}

/**
 * --resume of a run stopped before it wrote config.json (only its lock and partly built artifacts
 * are there): nothing can be continued, so the run starts from the beginning when the command
 * gives its options, without --force.
 */
async function resumeUnstarted(o: TrainOptions, runDir: string, takeLock: TakeLock): Promise<PreparedRun> {
  let state: string;
  try {
    state = checkOutputFolder(runDir, RUN_FOLDER);
  } catch {
    state = 'other';
  }
  const given = !!o.task && !!(o.model || o.artifacts);
  if (state !== 'partial' && !(state === 'empty' && given)) throw new ModtuneError(`--resume: ${o.out} is not a run folder (no config.json)`);
  if (!given) {
    throw new ModtuneError(`--resume: ${o.out} holds a run stopped before it wrote config.json; start it again with its options (a model or --artifacts, --train, --task), no --force needed`);
  }
  o.log?.(`${runDir}: the run was stopped before it wrote config.json; starting it from the beginning`);
  return prepareFresh({ ...o, resume: false }, takeLock);
}

function loadData(task: GlueTask, dir: string, tokenizer: BertTokenizer, maxLength: number, o: Pick<TrainOptions, 'limitTrain' | 'limitEval' | 'cacheDir'>) {
  const common = { dir, tokenizer, maxLength, cacheDir: o.cacheDir };
  const trainSet = loadTaskSplit(task, task.trainSplit, { ...common, limit: o.limitTrain });
  const devSets = task.devSplits.map((split) => ({ split, dataset: loadTaskSplit(task, split, { ...common, limit: o.limitEval }) }));
  return { trainSet, devSets };
}

export function computeTotals(
  trainSet: EncodedDataset,
  devSets: Array<{ split: string; dataset: EncodedDataset }>,
  o: { batchSize: number; gradAccum: number; epochs: number; maxSteps?: number; warmupRatio: number },
): RunTotals {
  const batchesPerEpoch = Math.ceil(trainSet.size / o.batchSize);
  const stepsPerEpoch = Math.ceil(batchesPerEpoch / o.gradAccum);
  const totalSteps = o.maxSteps ?? o.epochs * stepsPerEpoch;
  return {
    trainExamples: trainSet.size, batchesPerEpoch, stepsPerEpoch, totalSteps,
    warmupSteps: warmupStepsFor(o.warmupRatio, totalSteps),
    evalExamples: Object.fromEntries(devSets.map((d) => [d.split, d.dataset.size])),
  };
}

/**
 * A tokenizer with more entries than the model has embedding rows would feed ids the model cannot
 * look up: refuse it before training rather than fail inside ONNX Runtime.
 */
export function checkVocabulary(tokenizer: BertTokenizer, file: string, manifest: Manifest): BertTokenizer {
  const rows = manifest.base.vocabSize;
  if (rows !== undefined && tokenizer.vocabSize > rows) {
    throw new ModtuneError(`${file}: the tokenizer has ${tokenizer.vocabSize} entries but the model's word embeddings have ${rows} rows; use the tokenizer the model was trained with (--tokenizer)`);
  }
  return tokenizer;
}
