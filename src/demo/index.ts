import * as path from 'node:path';
import { defaultModel, randomControlModel, type PackagedModel } from '../bert/default-model.js';
import { resolveGlueDir, tokenizerBeside } from '../data/paths.js';
import { readGlueSplit } from '../data/glue-reader.js';
import { pullGlueTask } from '../data/glue-download.js';
import { ModtuneError } from '../errors.js';
import { train, type TrainOptions } from '../train/index.js';
import type { TrainSummary } from '../train/run-folder.js';

export interface DemoOptions {
  /** A model (.onnx) to tune instead of the pretrained default (no control run then). */
  model?: string;
  tokenizer?: string;
  data?: string;
  train?: string;
  limitTrain?: number;
  epochs?: number;
  batchSize?: number;
  lr?: number;
  threads?: number;
  out?: string;
  cacheDir?: string;
  log?: (line: string) => void;
  progress?: TrainOptions['progress'];
  signal?: AbortSignal;
  /** Also tune the random-weights control (default true). */
  control?: boolean;
}

export interface DemoRun {
  /** What was tuned: the pretrained default (or --model), or the random-weights control. */
  label: string;
  model: string;
  random: boolean;
  summary: TrainSummary;
}

export interface DemoResult {
  runs: DemoRun[];
  tokenizer: string;
  /** Dev accuracy of always predicting the most frequent dev label (SST-2: 50.92%). */
  majority: number;
}

/** A user model's tokenizer: given, or beside the model (found as `train` finds it). */
export function demoTokenizer(model: string, given?: string): string {
  const found = given ?? tokenizerBeside(model);
  if (!found) throw new ModtuneError(`no tokenizer beside ${model}: pass --tokenizer (a tokenizer.json or vocab.txt)`);
  return found;
}

/**
 * Where SST-2 is: the usual places (see resolveGlueDir), else downloaded into the cache with
 * `data pull`'s code, so the demo needs nothing beside the package but a network once.
 */
async function sst2Folder(opts: DemoOptions): Promise<string> {
  try {
    return resolveGlueDir('sst2', { cache: opts.cacheDir });
  } catch {
    opts.log?.('demo: SST-2 is not here yet; downloading it (modtune data pull SST-2)');
    return (await pullGlueTask('sst2', { cacheDir: opts.cacheDir })).root;
  }
}

/** The share of the most frequent label of a task's dev split. */
export function majorityBaseline(data?: string): number {
  const dev = readGlueSplit('sst2', 'dev', resolveGlueDir('sst2', { data }));
  const counts = new Map<string, number>();
  for (const e of dev.examples) counts.set(String(e.label), (counts.get(String(e.label)) ?? 0) + 1);
  return Math.max(...counts.values()) / dev.examples.length;
}

/**
 * The demo: tune the LayerNorms (and a new classifier) on SST-2 for about a minute and a half each,
 * of the pretrained default and, as the control, of the same shape from random initialisation, with
 * the same budget; both evaluated on the whole dev set. Pretrained modules transfer, random ones
 * cannot: the gap is the point of modtune.
 */
export async function runDemo(opts: DemoOptions = {}): Promise<DemoResult> {
  const data = opts.data ?? (await sst2Folder(opts));
  const main: PackagedModel = opts.model
    ? { name: opts.model, onnx: opts.model, tokenizer: demoTokenizer(opts.model, opts.tokenizer), random: false }
    : defaultModel(opts.cacheDir);
  const models = [main];
  // The control has the default's shape: it goes with the default, not with a model of the user's.
  if (!opts.model && opts.control !== false) models.push(randomControlModel(opts.cacheDir));
  const spec = opts.train ?? 'layernorm';
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const root = opts.out ?? path.join('runs', `demo-sst2-${spec.replace(/[^A-Za-z0-9@.-]+/g, '_')}-${stamp}`);
  const runs: DemoRun[] = [];
  for (const m of models) {
    const label = m.random ? 'random init (control)' : opts.model ? 'your model' : 'pretrained default';
    opts.log?.(`demo: tuning ${spec} of the ${label} (${m.name})`);
    const summary = await train({
      model: m.onnx,
      train: spec,
      task: 'sst2',
      tokenizer: opts.tokenizer ?? m.tokenizer,
      data,
      // Unset, train picks the rate by the share trained (1e-3 for LayerNorms, 2e-5 for full).
      lr: opts.lr,
      epochs: opts.epochs ?? 1,
      batchSize: opts.batchSize ?? 32,
      limitTrain: opts.limitTrain ?? 6000,
      warmupRatio: 0.06,
      maxLength: 64,
      seed: 42,
      threads: opts.threads,
      out: models.length > 1 ? path.join(root, m.random ? 'random' : 'pretrained') : root,
      cacheDir: opts.cacheDir,
      log: opts.log,
      progress: opts.progress,
      signal: opts.signal,
      newHead: true,
    });
    runs.push({ label, model: m.onnx, random: m.random, summary });
  }
  return { runs, tokenizer: opts.tokenizer ?? main.tokenizer, majority: majorityBaseline(data) };
}
