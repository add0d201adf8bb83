/**
 * The folder `modtune web` serves next to the page: the serve-model multi-task model of a base and
 * its deltas, the deltas themselves, tokenizers as tokenizer.json, subsets of GLUE's train/dev TSVs,
 * and ORT on-device-training artifacts (LayerNorms + a new head) for each head shape the offered
 * tasks need. Built once into the cache under a key made of every input's hash; a second start with
 * the same inputs reuses it.
 *
 * The multi-task model always gets one extra, hidden slot: every LayerNorm and a head as wide as the
 * widest trainable task are switchable, so a delta tuned on the page can be used at once ("use now")
 * without a new model.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { generateArtifacts } from '../artifacts/generate.js';
import { writeSafetensors } from '../bert/safetensors.js';
import { defaultModel } from '../bert/default-model.js';
import { demoTokenizer } from '../demo/index.js';
import { getGlueSplit, getGlueTask, type GlueTask } from '../data/glue-tasks.js';
import { glueDirCandidates, modtuneCacheDir } from '../data/paths.js';
import { glueSplitPath } from '../data/glue-reader.js';
import { loadTokenizer } from '../data/tokenizer.js';
import { ModtuneError } from '../errors.js';
import { headedInference, loadBase, type BaseModel } from '../export/apply.js';
import { readDelta, DELTA_JSON, DELTA_TENSORS, type Delta } from '../export/delta.js';
import { DELTA_FORMAT, DELTA_VERSION, type DeltaManifest } from '../export/delta-format.js';
import { buildMultiTaskModel, taskNames } from '../export/multitask.js';
import { hfValues } from '../export/params.js';
import type { HeadSpec } from '../heads/index.js';
import { sha256File } from '../onnx/hash.js';
import { saveModel } from '../onnx/io.js';
import { VERSION } from '../version.js';
import { SITE_FORMAT, SITE_VERSION, type SiteArtifacts, type SiteManifest, type SiteTask, type SiteTokenizer, type SiteTrainingTask } from './site-manifest.js';

export interface WebSiteOptions {
  /** Base model (default: the embedded default model, see src/bert/default-model.ts). */
  model?: string;
  /** Delta folders (`modtune export`) of the base, served as tasks. */
  deltas?: string[];
  /** Tokenizer for on-device training (default: beside the model, the first delta's, or ../shared's uncased BERT). */
  tokenizer?: string;
  /** GLUE data folder (default: the usual search, see `modtune data`). */
  data?: string;
  /** GLUE tasks offered for on-device training (default: every task whose train and dev files are found). */
  trainTasks?: string[];
  /** Rows of each task's train and dev split served to the page (default 2000 and 400). */
  trainRows?: number;
  devRows?: number;
  /** On-device training: learning rate (constant schedule), tokens per example, examples per step. */
  lr?: number;
  maxLength?: number;
  batchSize?: number;
  cacheDir?: string;
  force?: boolean;
  log?: (line: string) => void;
}

export interface PreparedSite {
  dir: string;
  manifest: SiteManifest;
  /** True when the folder came from the cache. */
  cached: boolean;
}

/** The hidden multi-task slot that keeps LayerNorms and a wide head switchable (see the file comment). */
const SLOT_NAME = '(on-device)';
const SELECTION = 'layernorm';
const SEED = 42;

export function prepareSite(opts: WebSiteOptions = {}): PreparedSite {
  const log = opts.log ?? (() => undefined);
  const model = path.resolve(opts.model ?? defaultModel(opts.cacheDir).onnx);
  if (!fs.existsSync(model)) throw new ModtuneError(`${opts.model}: model file not found`);
  const deltaDirs = (opts.deltas ?? []).map((d) => path.resolve(d));
  const deltas = deltaDirs.map(readDelta);
  const tokenizerFile = path.resolve(opts.tokenizer ?? defaultTokenizer(model, deltas));
  const trainRows = positive(opts.trainRows ?? 2000, 'trainRows');
  const devRows = positive(opts.devRows ?? 400, 'devRows');
  const lr = opts.lr ?? 1e-3;
  if (!(lr > 0 && Number.isFinite(lr))) throw new ModtuneError(`learning rate must be a positive number, got ${lr}`);
  const maxLength = positive(opts.maxLength ?? 64, 'maxLength');
  const batchSize = positive(opts.batchSize ?? 16, 'batchSize');
  const subsets = trainingSubsets(opts, trainRows, devRows);

  const key = crypto.createHash('sha256').update(JSON.stringify({
    site: SITE_VERSION, modtune: VERSION, model: sha256File(model), deltas: deltas.map((d) => [d.sha256, sha256File(path.join(d.dir, DELTA_JSON))]),
    tokenizer: sha256File(tokenizerFile), lr, maxLength, batchSize,
    subsets: subsets.map((s) => [s.task.name, hash(s.train), hash(s.dev)]),
  })).digest('hex').slice(0, 24);
  const dir = path.join(modtuneCacheDir(opts.cacheDir), 'web', key);
  const siteFile = path.join(dir, 'site.json');
  if (fs.existsSync(siteFile) && !opts.force) {
    log(`using the prepared site in ${dir}`);
    return { dir, manifest: JSON.parse(fs.readFileSync(siteFile, 'utf8')) as SiteManifest, cached: true };
  }

  const tmp = `${dir}.tmp-${process.pid}`;
  fs.rmSync(tmp, { recursive: true, force: true });
  fs.mkdirSync(tmp, { recursive: true });
  try {
    log(`preparing the site in ${dir}`);
    const base = loadBase(model);
    const headLabels = Math.max(2, ...subsets.map((s) => (s.task.regression ? 1 : s.task.labels!.length)));
    const slot = switchableSlot(base, headLabels);
    const served = buildMultiTaskModel(base, [...deltas, slot]);

    // The JS bindings cannot feed an overridable initializer: the switchable tensors become plain inputs.
    const graph = served.model.graph.clone();
    for (const s of served.meta.switchable) graph.initializers.delete(s.name);
    const modelFile = path.join(tmp, 'model.onnx');
    saveModel({ ...served.model, graph }, modelFile, { externalData: false });
    writeSafetensors(path.join(tmp, 'switchable.safetensors'), served.defaults);

    const siteTokenizer = writeTokenizer(tokenizerFile, undefined, path.join(tmp, 'tokenizer'), 'tokenizer');
    const names = taskNames(deltas);
    const tasks: SiteTask[] = deltas.map((d, i) => {
      const rel = `deltas/${i}`;
      const out = path.join(tmp, rel);
      fs.mkdirSync(out, { recursive: true });
      fs.copyFileSync(path.join(d.dir, DELTA_JSON), path.join(out, DELTA_JSON));
      fs.copyFileSync(path.join(d.dir, DELTA_TENSORS), path.join(out, DELTA_TENSORS));
      const m = d.manifest;
      const tok = m.tokenizer.file ? writeTokenizer(path.join(d.dir, m.tokenizer.file), m.tokenizer.lowercase, out, rel) : siteTokenizer;
      return { name: names[i]!, kind: m.task.kind, labels: m.task.labels, head: m.task.head, delta: rel, tokenizer: tok, maxLength: m.tokenizer.maxLength };
    });

    const artifacts: Record<string, SiteArtifacts> = {};
    const training: SiteTrainingTask[] = [];
    for (const s of subsets) {
      const head: HeadSpec = s.task.regression ? { kind: 'regression' } : { kind: 'classification', numLabels: s.task.labels!.length };
      const keyName = head.kind === 'regression' ? 'regression' : `classification-${head.numLabels}`;
      if (!artifacts[keyName]) {
        log(`  ORT training artifacts for ${keyName} (${SELECTION} + head)`);
        artifacts[keyName] = writeArtifacts(model, s.task, tokenizerFile, path.join(tmp, 'train', keyName), `train/${keyName}`, { lr, maxLength });
      }
      const rel = `data/${s.task.folder}`;
      fs.mkdirSync(path.join(tmp, rel), { recursive: true });
      fs.writeFileSync(path.join(tmp, rel, 'train.tsv'), s.train);
      fs.writeFileSync(path.join(tmp, rel, 'dev.tsv'), s.dev);
      training.push({
        name: s.task.name, kind: s.task.kind, labels: s.task.labels ? [...s.task.labels] : null, head, artifacts: keyName,
        train: `${rel}/train.tsv`, dev: `${rel}/dev.tsv`, trainRows: s.trainRows, devRows: s.devRows,
      });
    }

    const manifest: SiteManifest = {
      format: SITE_FORMAT,
      version: SITE_VERSION,
      modtuneVersion: VERSION,
      base: {
        file: path.basename(model), sha256: base.sha256, family: base.structure.family, numLayers: base.structure.numLayers,
        hiddenSize: base.structure.hiddenSize, totalParameters: base.structure.totalCount,
      },
      model: { file: 'model.onnx', bytes: fs.statSync(modelFile).size, maxLabels: served.meta.maxLabels },
      switchable: { file: 'switchable.safetensors', tensors: served.meta.switchable.map((s) => ({ name: s.name, shape: s.shape, padded: s.padded })) },
      tasks,
      tokenizer: siteTokenizer,
      training: { selection: SELECTION, lr, maxLength, batchSize, tasks: training, artifacts },
    };
    fs.writeFileSync(path.join(tmp, 'site.json'), JSON.stringify(manifest, null, 2) + '\n');
    fs.rmSync(dir, { recursive: true, force: true });
    fs.renameSync(tmp, dir);
    return { dir, manifest, cached: false };
  } catch (e) {
    fs.rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
}

function positive(n: number, what: string): number {
  if (!Number.isSafeInteger(n) || n < 1) throw new ModtuneError(`${what} must be a positive integer, got ${n}`);
  return n;
}

function hash(text: string): string {
  return crypto.createHash('sha256').update(text).digest('hex');
}

function defaultTokenizer(model: string, deltas: Delta[]): string {
  const first = deltas.find((d) => d.manifest.tokenizer.file);
  if (first) return path.join(first.dir, first.manifest.tokenizer.file!);
  return demoTokenizer(model);
}

interface Subset {
  task: GlueTask;
  train: string;
  dev: string;
  trainRows: number;
  devRows: number;
}

/** The first rows of each offered task's train and dev TSVs (header kept), as the official files have them. */
function trainingSubsets(opts: WebSiteOptions, trainRows: number, devRows: number): Subset[] {
  const wanted = opts.trainTasks?.map((t) => getGlueTask(t));
  const roots = glueDirCandidates({ data: opts.data, cache: opts.cacheDir }).map((c) => c.dir);
  const out: Subset[] = [];
  const tasks = wanted ?? ['CoLA', 'SST-2', 'MRPC', 'STS-B', 'QQP', 'MNLI', 'QNLI', 'RTE', 'WNLI'].map((t) => getGlueTask(t));
  for (const task of tasks) {
    const devSplit = task.devSplits[0]!;
    const root = roots.find((r) => fs.existsSync(glueSplitPath(task, task.trainSplit, r)) && fs.existsSync(glueSplitPath(task, devSplit, r)));
    if (!root) {
      if (wanted) throw new ModtuneError(`GLUE ${task.name} train/dev data not found (looked in ${roots.join(', ')}); pass --data DIR or run \`modtune data pull ${task.name}\``);
      continue;
    }
    const head = (split: string, rows: number) => {
      const file = glueSplitPath(task, split, root);
      const { layout } = getGlueSplit(task, split);
      const lines = fs.readFileSync(file, 'utf8').split('\n');
      const kept = lines.slice(0, rows + (layout.header ? 1 : 0)).filter((l, i, a) => !(i === a.length - 1 && l === ''));
      return { text: kept.join('\n') + '\n', rows: kept.length - (layout.header ? 1 : 0) };
    };
    const train = head(task.trainSplit, trainRows);
    const dev = head(devSplit, devRows);
    out.push({ task, train: train.text, dev: dev.text, trainRows: train.rows, devRows: dev.rows });
  }
  return out;
}

/** A tokenizer as the page reads it: its effective tokenizer.json, plus the file itself (named in deltas). */
function writeTokenizer(file: string, lowercase: boolean | undefined, outDir: string, rel: string): SiteTokenizer {
  const tok = loadTokenizer(file, lowercase === undefined ? {} : { lowercase });
  fs.mkdirSync(outDir, { recursive: true });
  const fileName = path.basename(file);
  const jsonName = fileName === 'tokenizer.json' ? 'tokenizer.effective.json' : 'tokenizer.json';
  fs.writeFileSync(path.join(outDir, jsonName), JSON.stringify(tok.definition));
  fs.copyFileSync(file, path.join(outDir, fileName));
  return { json: `${rel}/${jsonName}`, file: `${rel}/${fileName}`, fileName, sha256: sha256File(file), lowercase: tok.lowercase };
}

/**
 * ORT training artifacts that train the LayerNorms and a new head for `task`, with a constant
 * learning rate (the page trains for as many steps as asked) and no dropout.
 */
function writeArtifacts(model: string, task: GlueTask, tokenizer: string, out: string, rel: string, o: { lr: number; maxLength: number }): SiteArtifacts {
  const r = generateArtifacts({
    model, train: SELECTION, task: task.name, out, format: 'ort', lr: o.lr, lrSchedule: 'constant', dropout: 0,
    newHead: true, seed: SEED, tokenizer, maxLength: o.maxLength, force: true,
  });
  const ort = r.manifest.ort;
  if (!ort) throw new ModtuneError(`${out}: artifacts have no ort section`);
  const files = [ort.training, ort.eval, ort.optimizer, ort.checkpoint];
  const bytes = files.reduce((s, f) => s + fs.statSync(path.join(out, f)).size, 0);
  return {
    manifest: `${rel}/manifest.json`, training: `${rel}/${ort.training}`, eval: `${rel}/${ort.eval}`, optimizer: `${rel}/${ort.optimizer}`,
    checkpoint: `${rel}/${ort.checkpoint}`, bytes,
  };
}

/**
 * A delta that exists only to make every LayerNorm and a `numLabels`-row head switchable in the
 * multi-task model; it is not offered as a task. Its values are the base's LayerNorms and a zero head.
 */
function switchableSlot(base: BaseModel, numLabels: number): Delta {
  const head: HeadSpec = { kind: 'classification', numLabels };
  const headed = headedInference(base, head, true, SEED);
  const params = headed.structure.parameters.filter((p) => p.module.endsWith('layernorm') || p.module === 'classifier');
  const tensors = new Map(params.map((p) => [p.hfName, { shape: p.hfShape, data: p.module === 'classifier' ? new Float32Array(p.size) : hfValues(headed.model, p) }]));
  const s = base.structure;
  const manifest: DeltaManifest = {
    format: DELTA_FORMAT,
    version: DELTA_VERSION,
    modtuneVersion: VERSION,
    createdAt: new Date(0).toISOString(),
    base: { sha256: base.sha256, file: null, family: s.family, numLayers: s.numLayers, hiddenSize: s.hiddenSize, totalParameters: headed.structure.totalCount },
    task: { name: SLOT_NAME, kind: null, labels: null, head, newHead: true },
    selection: { spec: `${SELECTION},classifier`, trainableCount: params.reduce((n, p) => n + p.size, 0), totalCount: headed.structure.totalCount, freezeHead: false, seed: SEED },
    parameters: params.map((p) => ({ name: p.hfName, shape: p.hfShape, module: p.module, layer: p.layer, role: p.role, stored: 'value', trainableEntries: p.size, trained: false })),
    tokenizer: { file: null, sha256: null, lowercase: true, maxLength: 512 },
    checkpoint: { name: 'none', step: null, metrics: null, main: null },
    diff: false,
    tensors: { file: DELTA_TENSORS, sha256: '', bytes: 0 },
  };
  return { dir: SLOT_NAME, manifest, tensors, sha256: '' };
}
