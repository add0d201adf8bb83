/**
 * The training worker: LayerNorms and a new head train on the device with onnxruntime-web's
 * training build on the server's `ort` artifacts (checkpoint + training, eval and optimizer models),
 * so the page stays responsive. Each `train` call starts from the artifacts' checkpoint: AdamW at
 * the baked constant learning rate, shuffled batches of the task's train rows, the dev metric
 * before and after, and the trained values as a delta.
 */
import type { Manifest } from '../../artifacts/manifest.js';
import { BertWordPiece } from '../../data/bert-wordpiece.js';
import { parseGlueSplit, type GlueExample } from '../../data/glue-parse.js';
import { getGlueTask } from '../../data/glue-tasks.js';
import type { TokenizerJson } from '../../data/tokenizer-json.js';
import { mainMetric, taskMetrics } from '../../metrics/glue.js';
import { Rng } from '../../util/random.js';
import type { SiteManifest, SiteTrainingTask } from '../site-manifest.js';
import { buildDelta } from './delta-writer.js';
import { heapProblem } from './heap.js';
import { createTrainingSession, loadOrt, requestThreads, WASM_OOM, type Ort, type OrtTensor, type OrtTrainingSession } from './ort.js';
import { messageOf, serveCalls } from './rpc.js';
import { packRows } from './pack.js';

interface Encoded {
  ids: number[];
  types: number[];
  label: number;
}

export interface TrainArgs {
  task: string;
  steps: number;
  batchSize?: number;
  seed?: number;
  /** A dropped TSV in the task's GLUE train layout (header included); the last tenth is held out as dev. */
  tsv?: { name: string; text: string };
  /** Evaluate on the dev rows before and after (default true). */
  evaluate?: boolean;
  heapLimitBytes: number;
}

export interface TrainResult {
  task: string;
  losses: number[];
  stepMs: number[];
  trainRows: number;
  devRows: number;
  before: { loss: number; metrics: Record<string, number>; main: number } | null;
  after: { loss: number; metrics: Record<string, number>; main: number } | null;
  delta: { json: Uint8Array; safetensors: Uint8Array; tokenizerFile: string; tokenizerUrl: string; sha256: string };
}

let site: SiteManifest;
let siteUrl: string;
let tokenizer: Promise<BertWordPiece> | undefined;
const artifactBytes = new Map<string, Promise<{ manifest: Manifest; files: Uint8Array[] }>>();

async function fetchBytes(rel: string): Promise<Uint8Array> {
  const url = new URL(rel, siteUrl);
  const r = await fetch(url);
  if (!r.ok) throw new Error(`${url.pathname}: HTTP ${r.status}`);
  return new Uint8Array(await r.arrayBuffer());
}

async function fetchText(rel: string): Promise<string> {
  return new TextDecoder().decode(await fetchBytes(rel));
}

function siteTokenizer(): Promise<BertWordPiece> {
  tokenizer ??= fetchText(site.tokenizer.json).then((t) => new BertWordPiece(JSON.parse(t) as TokenizerJson, site.tokenizer.file));
  return tokenizer;
}

function artifactsFor(key: string): Promise<{ manifest: Manifest; files: Uint8Array[] }> {
  let p = artifactBytes.get(key);
  if (!p) {
    const a = site.training.artifacts[key]!;
    p = (async () => {
      const manifest = JSON.parse(await fetchText(a.manifest)) as Manifest;
      const files = await Promise.all([a.checkpoint, a.training, a.eval, a.optimizer].map(fetchBytes));
      return { manifest, files };
    })();
    p.catch(() => artifactBytes.delete(key));
    artifactBytes.set(key, p);
  }
  return p;
}

function examples(task: SiteTrainingTask, args: TrainArgs): Promise<{ train: GlueExample[]; dev: GlueExample[] }> | { train: GlueExample[]; dev: GlueExample[] } {
  const glue = getGlueTask(task.name);
  if (args.tsv) {
    // parseGlueSplit names the file and line of anything that does not fit the layout.
    const all = parseGlueSplit(glue, glue.trainSplit, args.tsv.text, args.tsv.name).examples;
    if (all.length < 2) throw new Error(`${args.tsv.name}: ${all.length} example(s); give at least 2 rows (one is held out to evaluate)`);
    const dev = Math.max(1, Math.floor(all.length / 10));
    return { train: all.slice(0, all.length - dev), dev: all.slice(all.length - dev) };
  }
  return (async () => ({
    train: parseGlueSplit(glue, glue.trainSplit, await fetchText(task.train), task.train).examples,
    dev: parseGlueSplit(glue, glue.devSplits[0]!, await fetchText(task.dev), task.dev).examples,
  }))();
}

class Trainer {
  constructor(
    private readonly ort: Ort,
    private readonly session: OrtTrainingSession,
    private readonly regression: boolean,
  ) {}

  private feeds(names: readonly string[], rows: Encoded[]): Record<string, OrtTensor> {
    const { rows: n, seq, ids, mask, types } = packRows(rows);
    const labels = this.regression ? new this.ort.Tensor('float32', Float32Array.from(rows, (r) => r.label), [n]) : new this.ort.Tensor('int64', BigInt64Array.from(rows, (r) => BigInt(r.label)), [n]);
    const all: Record<string, OrtTensor> = {
      input_ids: new this.ort.Tensor('int64', ids, [n, seq]),
      attention_mask: new this.ort.Tensor('int64', mask, [n, seq]),
      token_type_ids: new this.ort.Tensor('int64', types, [n, seq]),
      labels,
    };
    const feeds: Record<string, OrtTensor> = {};
    for (const name of names) {
      if (!all[name]) throw new Error(`the training model has an input '${name}' the page cannot feed`);
      feeds[name] = all[name]!;
    }
    return feeds;
  }

  async step(rows: Encoded[]): Promise<number> {
    const out = await this.session.runTrainStep(this.feeds(this.session.trainingInputNames, rows));
    const loss = (out.loss?.data as Float32Array | undefined)?.[0];
    if (loss === undefined) throw new Error(`the training model has no 'loss' output (outputs: ${Object.keys(out).join(', ')})`);
    if (!Number.isFinite(loss)) throw new Error(`the loss became ${loss}; lower the learning rate`);
    await this.session.runOptimizerStep();
    await this.session.lazyResetGrad();
    return loss;
  }

  async evaluate(task: string, rows: Encoded[]): Promise<{ loss: number; metrics: Record<string, number>; main: number }> {
    const predictions: number[] = [];
    let lossSum = 0;
    for (let i = 0; i < rows.length; i += 32) {
      const batch = rows.slice(i, i + 32);
      const out = await this.session.runEvalStep(this.feeds(this.session.evalInputNames, batch));
      lossSum += (out.loss!.data as Float32Array)[0]! * batch.length;
      const logits = out.logits!.data as Float32Array;
      const width = logits.length / batch.length;
      batch.forEach((_, r) => {
        const row = Array.from(logits.subarray(r * width, (r + 1) * width));
        predictions.push(this.regression ? row[0]! : row.indexOf(Math.max(...row)));
      });
    }
    const labels = rows.map((r) => r.label);
    const metrics = taskMetrics(task, predictions, labels);
    return { loss: lossSum / rows.length, metrics, main: mainMetric(task, metrics) };
  }
}

const calls = serveCalls({
  async init(args: { siteUrl: string; threads?: number }) {
    siteUrl = args.siteUrl;
    requestThreads(args.threads);
    const r = await fetch(new URL('site.json', siteUrl));
    if (!r.ok) throw new Error(`site.json: HTTP ${r.status}`);
    site = (await r.json()) as SiteManifest;
    return { tasks: site.training.tasks.map((t) => t.name) };
  },

  async train(args: TrainArgs): Promise<TrainResult> {
    const task = site.training.tasks.find((t) => t.name === args.task || getGlueTask(t.name).name === safeTaskName(args.task));
    if (!task) throw new Error(`no training data or artifacts for task '${args.task}' on this server; tasks: ${site.training.tasks.map((t) => t.name).join(', ') || 'none (start modtune web with --data)'}`);
    const steps = args.steps;
    if (!Number.isSafeInteger(steps) || steps < 1 || steps > 100000) throw new Error(`steps must be an integer from 1 to 100000, got ${steps}`);
    const batchSize = args.batchSize ?? site.training.batchSize;
    if (!Number.isSafeInteger(batchSize) || batchSize < 1 || batchSize > 256) throw new Error(`batch size must be an integer from 1 to 256, got ${batchSize}`);
    const a = site.training.artifacts[task.artifacts]!;
    const problem = heapProblem(`the ${task.artifacts} training artifacts`, a.bytes, args.heapLimitBytes);
    if (problem) throw new Error(problem);

    const [data, tok, art, ort] = await Promise.all([examples(task, args), siteTokenizer(), artifactsFor(task.artifacts), loadOrt()]);
    const maxLength = art.manifest.tokenizer.maxLength;
    const encode = (e: GlueExample): Encoded => {
      const x = tok.encode(e.textA, e.textB, maxLength);
      if (e.label === undefined) throw new Error(`task ${task.name}: an example without a label (id ${e.id}); training needs labelled rows`);
      return { ids: x.inputIds, types: x.tokenTypeIds, label: e.label };
    };
    const train = data.train.map(encode);
    const dev = data.dev.map(encode);
    if (train.length === 0) throw new Error(`task ${task.name}: no training rows`);

    let session: OrtTrainingSession;
    try {
      const [checkpointState, trainModel, evalModel, optimizerModel] = art.files;
      session = await createTrainingSession(ort, { checkpointState: checkpointState!, trainModel: trainModel!, evalModel, optimizerModel });
    } catch (e) {
      const msg = messageOf(e);
      if (WASM_OOM.test(msg)) throw new Error(`out of WebAssembly memory loading the training artifacts (${msg}); the model is too large to train in this browser`);
      throw new Error(`onnxruntime-web could not load the training artifacts: ${msg}`);
    }
    try {
      const regression = task.head.kind === 'regression';
      const trainer = new Trainer(ort, session, regression);
      const evaluate = args.evaluate !== false && dev.length > 0;
      const before = evaluate ? await trainer.evaluate(task.name, dev) : null;
      const rng = new Rng(args.seed ?? 42);
      let order: number[] = [];
      const losses: number[] = [];
      const stepMs: number[] = [];
      for (let s = 1; s <= steps; s++) {
        const batch: Encoded[] = [];
        while (batch.length < Math.min(batchSize, train.length)) {
          if (order.length === 0) order = rng.shuffle(Array.from({ length: train.length }, (_, i) => i));
          batch.push(train[order.pop()!]!);
        }
        const t0 = performance.now();
        const loss = await trainer.step(batch);
        const ms = performance.now() - t0;
        losses.push(loss);
        stepMs.push(ms);
        calls.emit('step', { step: s, steps, loss, ms });
      }
      const after = evaluate ? await trainer.evaluate(task.name, dev) : null;

      const flat = (await session.getContiguousParameters(true)).data as Float32Array;
      const sizes = new Map(art.manifest.parameters.map((p) => [p.name, p.size]));
      const params = new Map<string, Float32Array>();
      let offset = 0;
      for (const name of art.manifest.ort!.trainableOrder) {
        const size = sizes.get(name)!;
        params.set(name, flat.slice(offset, offset + size));
        offset += size;
      }
      if (offset !== flat.length) throw new Error(`onnxruntime-web returned ${flat.length} trainable values, the artifacts list ${offset}`);
      const delta = await buildDelta(art.manifest, params, site, task, { steps, metrics: after?.metrics ?? null, main: after?.main ?? null });
      return {
        task: task.name, losses, stepMs, trainRows: train.length, devRows: dev.length, before, after,
        delta: { json: delta.json, safetensors: delta.safetensors, tokenizerFile: site.tokenizer.fileName, tokenizerUrl: site.tokenizer.file, sha256: delta.manifest.tensors.sha256 },
      };
    } finally {
      await session.release();
    }
  },
});

function safeTaskName(name: string): string | undefined {
  try {
    return getGlueTask(name).name;
  } catch {
    return undefined;
  }
}
