/**
 * Drives generated artifacts the way a user of another language would: native models through stock
 * onnxruntime-node, fed by the manifest's I/O roles; ORT artifacts through onnxruntime-web's
 * training build. Shared by the proof tests.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as ortNode from 'onnxruntime-node';
import type { Manifest, ModelSpec } from '../../../src/artifacts/manifest.js';
import { scheduledLearningRate } from '../../../src/artifacts/ort/optimizer.js';
import { buildBert } from '../../../src/bert/build.js';
import { parseHfConfig, type BertConfig } from '../../../src/bert/config.js';
import { readSafetensors } from '../../../src/bert/safetensors.js';
import { loadWeights } from '../../../src/bert/weights.js';
import { saveModel } from '../../../src/onnx/io.js';
import { createTrainingSession, OrtTrainingSession } from '../../../src/runtime/ort-training.js';
import { ROOT } from '../../helpers/paths.js';

/** PyTorch reference fixtures (scripts/torch_reference_grads.py). */
export const TORCH_FIXTURES = path.join(ROOT, 'test/fixtures/torch');

/** A tiny BERT (hidden 32, 2 layers, vocab 64), for the bad-input proofs. */
export const TINY_CONFIG: BertConfig = {
  modelType: 'bert', vocabSize: 64, hiddenSize: 32, numHiddenLayers: 2, numAttentionHeads: 4, intermediateSize: 64, hiddenAct: 'gelu',
  hiddenDropoutProb: 0.1, attentionProbsDropoutProb: 0.1, classifierDropout: null, maxPositionEmbeddings: 32, typeVocabSize: 2,
  layerNormEps: 1e-12, padTokenId: 0,
};
export const TINY_LABELS = 2;

/** Save the tiny BERT classifier (LayerNorms perturbed so that top= masks have no ties) into `dir`. */
export function writeTinyBert(dir: string, opts: { seed?: number } = {}): string {
  const file = path.join(dir, 'tiny-bert.onnx');
  saveModel(buildBert({ config: TINY_CONFIG, seed: opts.seed ?? 7, perturbLayerNorm: true, numLabels: TINY_LABELS }), file);
  return file;
}

export interface Batch {
  batch: number;
  sequence: number;
  inputIds: BigInt64Array;
  attentionMask: BigInt64Array;
  tokenTypeIds: BigInt64Array;
  labels: BigInt64Array | Float32Array;
}

/** A deterministic classification batch: [CLS]=2 … [SEP]=3, padding at the ends of some rows, two segments. */
export function syntheticBatch(opts: { batch: number; sequence: number; numLabels: number; vocab: number; seed: number }): Batch {
  const { batch: B, sequence: L } = opts;
  let s = (opts.seed * 2654435761) >>> 0;
  const next = () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
  const inputIds = new BigInt64Array(B * L);
  const attentionMask = new BigInt64Array(B * L);
  const tokenTypeIds = new BigInt64Array(B * L);
  for (let b = 0; b < B; b++) {
    const length = L - (b % 3);
    const split = 1 + Math.floor(length / 2);
    for (let t = 0; t < L; t++) {
      const i = b * L + t;
      if (t >= length) continue; // [PAD] = 0, mask 0
      attentionMask[i] = 1n;
      tokenTypeIds[i] = t >= split ? 1n : 0n;
      inputIds[i] = t === 0 ? 2n : t === length - 1 ? 3n : BigInt(4 + Math.floor(next() * (opts.vocab - 4)));
    }
  }
  const labels = BigInt64Array.from({ length: B }, (_, b) => BigInt(Math.floor(next() * opts.numLabels) % opts.numLabels));
  return { batch: B, sequence: L, inputIds, attentionMask, tokenTypeIds, labels };
}

/** A batch given as nested arrays (the torch reference JSONs). */
export function batchFromJson(inputs: { input_ids: number[][]; attention_mask: number[][]; token_type_ids: number[][]; labels: number[] }, regression: boolean): Batch {
  const B = inputs.input_ids.length;
  const L = inputs.input_ids[0]!.length;
  const ints = (rows: number[][]) => BigInt64Array.from(rows.flat().map((v) => BigInt(v)));
  return {
    batch: B, sequence: L,
    inputIds: ints(inputs.input_ids), attentionMask: ints(inputs.attention_mask), tokenTypeIds: ints(inputs.token_type_ids),
    labels: regression ? Float32Array.from(inputs.labels) : BigInt64Array.from(inputs.labels.map((v) => BigInt(v))),
  };
}

/** The initial trainable values (HF names, HF layout) from params.safetensors. */
export function initialValues(dir: string, m: Manifest): Map<string, Float32Array> {
  const out = new Map<string, Float32Array>();
  for (const [k, t] of readSafetensors(path.join(dir, m.initialValues)).tensors) out.set(k, t.data.slice());
  return out;
}

/** The 0/1 masks of masked parameters (HF layout). */
export function masks(dir: string, m: Manifest): Map<string, Float32Array> {
  const out = new Map<string, Float32Array>();
  if (!m.masks) return out;
  for (const [k, t] of readSafetensors(path.join(dir, m.masks)).tensors) out.set(k, t.data);
  return out;
}

export function nativeSession(dir: string, spec: ModelSpec): Promise<ortNode.InferenceSession> {
  // From the file path, so that the shared external weights resolve; one thread: small models, shared machine.
  return ortNode.InferenceSession.create(path.join(dir, spec.file), { intraOpNumThreads: 1, interOpNumThreads: 1 });
}

export interface NativeState {
  params: Map<string, Float32Array>;
  /** `P.exp_avg` / `P.exp_avg_sq` by their input names; absent = zeros. */
  moments: Map<string, Float32Array>;
  accumulators?: Map<string, Float32Array>;
}

/** Feeds for any native model, from the manifest's roles. */
export function nativeFeeds(
  m: Manifest,
  spec: ModelSpec,
  batch: Batch,
  state: NativeState,
  scalars: { learningRate?: number; step?: number; gradScale?: number } = {},
): Record<string, ortNode.Tensor> {
  const shapeOf = (p: string) => m.parameters.find((x) => x.name === p)!.shape;
  const zeros = (p: string) => new Float32Array(m.parameters.find((x) => x.name === p)!.size);
  const dims = [batch.batch, batch.sequence];
  const feeds: Record<string, ortNode.Tensor> = {};
  for (const io of spec.inputs) {
    const p = io.parameter!;
    switch (io.role) {
      case 'input_ids': feeds[io.name] = new ortNode.Tensor('int64', batch.inputIds, dims); break;
      case 'attention_mask': feeds[io.name] = new ortNode.Tensor('int64', batch.attentionMask, dims); break;
      case 'token_type_ids': feeds[io.name] = new ortNode.Tensor('int64', batch.tokenTypeIds, dims); break;
      case 'labels':
        feeds[io.name] = batch.labels instanceof Float32Array
          ? new ortNode.Tensor('float32', batch.labels, [batch.batch])
          : new ortNode.Tensor('int64', batch.labels, [batch.batch]);
        break;
      case 'parameter': feeds[io.name] = new ortNode.Tensor('float32', state.params.get(p)!, shapeOf(p)); break;
      case 'grad_accumulator': feeds[io.name] = new ortNode.Tensor('float32', state.accumulators?.get(p) ?? zeros(p), shapeOf(p)); break;
      case 'exp_avg': case 'exp_avg_sq':
        feeds[io.name] = new ortNode.Tensor('float32', state.moments.get(io.name) ?? zeros(p), shapeOf(p)); break;
      case 'learning_rate': feeds[io.name] = new ortNode.Tensor('float32', [scalars.learningRate!], []); break;
      case 'step': feeds[io.name] = new ortNode.Tensor('float32', [scalars.step!], []); break;
      case 'grad_scale': feeds[io.name] = new ortNode.Tensor('float32', [scalars.gradScale ?? 1], []); break;
      default: throw new Error(`${spec.file}: input '${io.name}' has role ${io.role}, which this driver does not feed`);
    }
  }
  return feeds;
}

/** One batch's loss, logits and gradients from native/gradient.onnx (accumulators zero). */
export async function nativeGradients(dir: string, m: Manifest, batch: Batch, params = initialValues(dir, m)) {
  const spec = m.native!.gradient;
  const session = await nativeSession(dir, spec);
  const out = await session.run(nativeFeeds(m, spec, batch, { params, moments: new Map() }));
  const gradients = new Map<string, Float32Array>();
  let loss = NaN;
  let logits: Float32Array = new Float32Array();
  for (const io of spec.outputs) {
    const data = out[io.name]!.data as Float32Array;
    if (io.role === 'grad_accumulator_updated') gradients.set(io.parameter!, data);
    if (io.role === 'loss') loss = data[0]!;
    if (io.role === 'logits') logits = data;
  }
  await session.release();
  return { loss, logits, gradients };
}

/** Full-batch training with native/train_step.onnx: the state the trainer keeps between steps. */
export class NativeTrainer {
  readonly state: NativeState;
  steps = 0;
  private constructor(private readonly m: Manifest, private readonly session: ortNode.InferenceSession, params: Map<string, Float32Array>) {
    this.state = { params, moments: new Map() };
  }

  static async create(dir: string, m: Manifest): Promise<NativeTrainer> {
    return new NativeTrainer(m, await nativeSession(dir, m.native!.trainStep), initialValues(dir, m));
  }

  /** One optimizer update on `batch`; returns the loss before the update. */
  async step(batch: Batch): Promise<number> {
    const spec = this.m.native!.trainStep;
    const step = ++this.steps;
    const learningRate = scheduledLearningRate(this.m.optimizer.lr, this.m.optimizer.schedule, step);
    const out = await this.session.run(nativeFeeds(this.m, spec, batch, this.state, { learningRate, step, gradScale: 1 }));
    let loss = NaN;
    for (const io of spec.outputs) {
      const data = out[io.name]!.data as Float32Array;
      if (io.role === 'loss') loss = data[0]!;
      else if (io.role === 'parameter_updated') this.state.params.set(io.parameter!, data);
      else if (io.role === 'exp_avg_updated') this.state.moments.set(`${io.parameter}.exp_avg`, data);
      else if (io.role === 'exp_avg_sq_updated') this.state.moments.set(`${io.parameter}.exp_avg_sq`, data);
    }
    return loss;
  }

  release(): Promise<void> {
    return this.session.release();
  }
}

/** Full-batch training with the ORT artifacts in onnxruntime-web's training build. */
export class OrtTrainer {
  private constructor(private readonly m: Manifest, readonly session: OrtTrainingSession) {}

  static async create(dir: string, m: Manifest): Promise<OrtTrainer> {
    const o = m.ort!;
    const read = (f: string) => fs.readFileSync(path.join(dir, f));
    const session = await createTrainingSession(
      { checkpoint: read(o.checkpoint), trainModel: read(o.training), evalModel: read(o.eval), optimizerModel: read(o.optimizer) },
      { labels: { checkpoint: o.checkpoint, trainModel: o.training, evalModel: o.eval, optimizerModel: o.optimizer } },
    );
    return new OrtTrainer(m, session);
  }

  feeds(batch: Batch) {
    const T = this.session.ort.Tensor;
    const dims = [batch.batch, batch.sequence];
    return {
      input_ids: new T('int64', batch.inputIds, dims),
      attention_mask: new T('int64', batch.attentionMask, dims),
      token_type_ids: new T('int64', batch.tokenTypeIds, dims),
      labels: batch.labels instanceof Float32Array ? new T('float32', batch.labels, [batch.batch]) : new T('int64', batch.labels, [batch.batch]),
    };
  }

  /** One optimizer update on `batch`; returns the loss before the update. */
  async step(batch: Batch): Promise<number> {
    const out = await this.session.runTrainStep(this.feeds(batch));
    await this.session.runOptimizerStep();
    await this.session.lazyResetGrad();
    return out.loss!.data[0] as number;
  }

  async evalLogits(batch: Batch): Promise<Float32Array> {
    const out = await this.session.runEvalStep(this.feeds(batch));
    return (out.logits!.data as Float32Array).slice();
  }

  /** The trainable parameters by HF name (getContiguousParameters(true) in manifest.ort.trainableOrder). */
  async trainable(): Promise<Map<string, Float32Array>> {
    return splitFlat(await this.session.getContiguousParameters(true), this.m.ort!.trainableOrder, (n) => this.m.parameters.find((p) => p.name === n)!.size);
  }

  release(): Promise<void> {
    return this.session.release();
  }
}

/** Cut a flat parameter buffer into named tensors; the sizes must add up exactly. */
export function splitFlat(flat: Float32Array, order: string[], sizeOf: (name: string) => number): Map<string, Float32Array> {
  const out = new Map<string, Float32Array>();
  let offset = 0;
  for (const name of order) {
    const n = sizeOf(name);
    out.set(name, flat.slice(offset, offset + n));
    offset += n;
  }
  if (offset !== flat.length) throw new Error(`flat buffer has ${flat.length} values, the parameters ${offset}`);
  return out;
}

/**
 * The comparison rule of the torch reference fixtures (scripts/torch_reference_grads.py): per
 * tensor, max_i |got_i − ref_i| ≤ rel · max_i |ref_i| + floor, i.e. an infinity-norm relative error
 * with an absolute floor for tensors whose true value is zero (the attention key biases).
 */
export function compareTensor(got: ArrayLike<number>, ref: ArrayLike<number>) {
  if (got.length !== ref.length) throw new Error(`length ${got.length} vs ${ref.length}`);
  let maxDiff = 0;
  let maxRef = 0;
  for (let i = 0; i < ref.length; i++) {
    maxDiff = Math.max(maxDiff, Math.abs(got[i]! - ref[i]!));
    maxRef = Math.max(maxRef, Math.abs(ref[i]!));
  }
  return { maxDiff, maxRef, relative: maxRef > 0 ? maxDiff / maxRef : maxDiff };
}

export function equalArrays(a: Float32Array, b: Float32Array): boolean {
  return a.length === b.length && a.every((v, i) => Object.is(v, b[i]!));
}

/** The torch-reference builder model (test/fixtures/torch/builder-tiny): vocab 120, hidden 32, 2 layers, 3 labels. */
export function writeBuilderTiny(dir: string, variant: 'builder-tiny' | 'builder-tiny-regression' = 'builder-tiny'): string {
  const src = path.join(TORCH_FIXTURES, variant);
  const config = parseHfConfig(JSON.parse(fs.readFileSync(path.join(src, 'config.json'), 'utf8')), path.join(src, 'config.json'));
  const weights = loadWeights(path.join(src, 'model.safetensors'));
  const file = path.join(dir, `${variant}.onnx`);
  const regression = variant.endsWith('regression');
  saveModel(buildBert({ config, weights, numLabels: regression ? 1 : config.numLabels, regression }), file);
  return file;
}

export interface CliResult { code: number | null; stdout: string; stderr: string }

/** Run `modtune <args>` as a user would (from the repository root). */
export function runCli(args: string[]): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], { cwd: ROOT, env: { ...process.env, MODTUNE_DEBUG: '' } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** Run async jobs with at most `limit` at a time (CLI processes on a small machine). */
export async function withLimit<T>(limit: number, jobs: (() => Promise<T>)[]): Promise<T[]> {
  const results: T[] = new Array(jobs.length);
  let next = 0;
  const worker = async () => {
    while (next < jobs.length) {
      const i = next++;
      results[i] = await jobs[i]!();
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, jobs.length) }, worker));
  return results;
}
