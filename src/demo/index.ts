import * as fs from 'node:fs';
import * as path from 'node:path';
import { buildBert, presetConfig } from '../bert/index.js';
import { modtuneCacheDir, packageRoot } from '../data/paths.js';
import { ModtuneError } from '../errors.js';
import { saveModel } from '../onnx/io.js';
import { train, type TrainOptions } from '../train/index.js';
import type { TrainSummary } from '../train/run-folder.js';

/** The embedded default model description (models/demo-bert-mini.json). */
export interface DemoModelSpec {
  description: string;
  preset: string;
  seed: number;
  perturbLayerNorm: boolean;
}

export interface DemoOptions {
  /** A real model to fine-tune instead of the embedded random one. */
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
}

export interface DemoResult {
  summary: TrainSummary;
  model: string;
  randomModel: boolean;
  tokenizer: string;
}

function readDemoSpec(): DemoModelSpec {
  const root = packageRoot();
  const file = root ? path.join(root, 'models', 'demo-bert-mini.json') : undefined;
  if (!file || !fs.existsSync(file)) throw new ModtuneError('the embedded demo model description models/demo-bert-mini.json is missing from the installation');
  return JSON.parse(fs.readFileSync(file, 'utf8')) as DemoModelSpec;
}

/** Build the embedded default model once into the cache, and reuse it. */
export function demoModel(cacheDir?: string): string {
  const spec = readDemoSpec();
  const dir = path.join(modtuneCacheDir(cacheDir), 'demo');
  const file = path.join(dir, `${spec.preset}-random-seed${spec.seed}.onnx`);
  if (!fs.existsSync(file)) {
    fs.mkdirSync(dir, { recursive: true });
    saveModel(buildBert({ config: presetConfig(spec.preset), seed: spec.seed, perturbLayerNorm: spec.perturbLayerNorm }), file);
  }
  return file;
}

/** The tokenizer: given, beside the model, or the uncased BERT vocabulary of ../shared. */
export function demoTokenizer(model: string, given?: string): string {
  if (given) return given;
  for (const f of ['tokenizer.json', 'vocab.txt']) {
    const p = path.join(path.dirname(path.resolve(model)), f);
    if (fs.existsSync(p)) return p;
  }
  const root = packageRoot();
  const candidates = [path.resolve('../shared/tokenizers/bert-base-uncased/vocab.txt')];
  if (root) candidates.push(path.resolve(root, '../shared/tokenizers/bert-base-uncased/vocab.txt'));
  for (const c of candidates) if (fs.existsSync(c)) return c;
  throw new ModtuneError('no tokenizer found for the demo: pass --tokenizer PATH (a tokenizer.json or the vocab.txt of an uncased BERT), or `modtune pull <repo>` a model that ships one');
}

/**
 * The demo: fine-tune the LayerNorms (and the new classifier) of a BERT on SST-2 for about two
 * minutes on two cores, then evaluate on the whole dev set.
 */
export async function runDemo(opts: DemoOptions = {}): Promise<DemoResult> {
  const randomModel = !opts.model;
  const model = opts.model ?? demoModel(opts.cacheDir);
  const tokenizer = demoTokenizer(model, opts.tokenizer);
  const spec = opts.train ?? 'layernorm';
  const out = opts.out ?? path.join('runs', `demo-sst2-${spec.replace(/[^A-Za-z0-9@.-]+/g, '_')}-${new Date().toISOString().replace(/[:.]/g, '-')}`);
  const summary = await train({
    model,
    train: spec,
    task: 'sst2',
    tokenizer,
    data: opts.data,
    // LayerNorm tuning wants a larger learning rate than full fine-tuning (few, well-conditioned parameters).
    lr: opts.lr ?? 1e-3,
    epochs: opts.epochs ?? 1,
    batchSize: opts.batchSize ?? 32,
    limitTrain: opts.limitTrain ?? 6000,
    warmupRatio: 0.06,
    maxLength: 64,
    seed: 42,
    threads: opts.threads,
    out,
    cacheDir: opts.cacheDir,
    log: opts.log,
    progress: opts.progress,
    signal: opts.signal,
    newHead: true,
  });
  return { summary, model, randomModel, tokenizer };
}
