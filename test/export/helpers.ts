/**
 * Fabricated training runs for export/merge/predict tests: a tiny base model, real artifacts from
 * generateArtifacts, and run folders laid out as the trainer writes them, with perturbed ("tuned")
 * checkpoint values.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { buildBert } from '../../src/bert/build.js';
import { parseHfConfig } from '../../src/bert/config.js';
import { readSafetensors, writeSafetensors } from '../../src/bert/safetensors.js';
import { generateArtifacts } from '../../src/artifacts/generate.js';
import type { Manifest } from '../../src/artifacts/manifest.js';
import { saveModel } from '../../src/onnx/io.js';
import { Rng } from '../../src/util/random.js';
import { ROOT, VOCAB } from '../helpers/paths.js';

/** Real vocabulary size (the shared tokenizer's ids must be valid), everything else tiny. */
export function tinyConfig(over: Record<string, unknown> = {}) {
  return parseHfConfig({
    model_type: 'bert', vocab_size: 30522, hidden_size: 16, num_hidden_layers: 2, num_attention_heads: 2,
    intermediate_size: 32, max_position_embeddings: 64, type_vocab_size: 2, ...over,
  }, 'tiny-config.json');
}

/** Write a tiny base model (seeded; LayerNorms perturbed so they look trained) into `dir`. */
export function writeBase(dir: string, opts: { seed?: number; numLabels?: number; file?: string; config?: Record<string, unknown> } = {}): string {
  fs.mkdirSync(dir, { recursive: true });
  const model = buildBert({ config: tinyConfig(opts.config), seed: opts.seed ?? 1, perturbLayerNorm: true, numLabels: opts.numLabels });
  const file = path.join(dir, opts.file ?? 'base.onnx');
  saveModel(model, file);
  return file;
}

export interface FakeRun {
  dir: string;
  artifacts: string;
  manifest: Manifest;
  /** Tuned values written to best/ (and the last checkpoint), Hugging Face layout. */
  best: Map<string, { shape: number[]; data: Float32Array }>;
  /** Values of checkpoints/step-<lastStep>. */
  last: Map<string, { shape: number[]; data: Float32Array }>;
  lastStep: number;
  bestStep: number;
}

export interface FakeRunOptions {
  base: string;
  dir: string;
  train: string;
  task?: string;
  numLabels?: number;
  regression?: boolean;
  newHead?: boolean;
  freezeHead?: boolean;
  seed?: number;
  tokenizer?: string | null;
  /** Noise std of the tuned values (default 0.05). */
  noise?: number;
}

/**
 * A run folder as `modtune train` leaves it: config.json, metrics.jsonl, two checkpoints (the
 * newer one named by LATEST) and best/. Only entries that may train move (masks respected).
 */
export function fakeRun(opts: FakeRunOptions): FakeRun {
  const artifacts = path.join(opts.dir, 'artifacts');
  const gen = generateArtifacts({
    model: opts.base, train: opts.train, out: artifacts, task: opts.task, numLabels: opts.numLabels, regression: opts.regression,
    newHead: opts.newHead, freezeHead: opts.freezeHead, dropout: 0, maxLength: 64, seed: 42,
    tokenizer: opts.tokenizer === null ? undefined : (opts.tokenizer ?? VOCAB),
  });
  const manifest = gen.manifest;
  const initial = readSafetensors(path.join(artifacts, 'params.safetensors')).tensors;
  const masks = manifest.masks ? readSafetensors(path.join(artifacts, manifest.masks)).tensors : new Map();
  const rng = new Rng(opts.seed ?? 7);
  const perturb = (scale: number) => {
    const out = new Map<string, { shape: number[]; data: Float32Array }>();
    for (const p of manifest.parameters) {
      const init = initial.get(p.name)!;
      const mask = p.mask ? masks.get(p.mask)!.data : undefined;
      const data = Float32Array.from(init.data, (v, i) => (mask && mask[i] === 0 ? v : v + rng.normal(0, scale)));
      out.set(p.name, { shape: p.shape, data });
    }
    return out;
  };
  const noise = opts.noise ?? 0.05;
  const best = perturb(noise);
  const last = perturb(noise);
  const bestStep = 20;
  const lastStep = 30;
  for (const [step, values] of [[10, perturb(noise)], [bestStep, best], [lastStep, last]] as const) {
    const ck = path.join(opts.dir, 'checkpoints', `step-${step}`);
    fs.mkdirSync(ck, { recursive: true });
    writeSafetensors(path.join(ck, 'params.safetensors'), values);
    fs.writeFileSync(path.join(ck, 'state.json'), JSON.stringify({ version: 1, step, epoch: 1, metrics: { accuracy: step / 100 } }));
  }
  fs.writeFileSync(path.join(opts.dir, 'checkpoints', 'LATEST'), `step-${lastStep}`);
  fs.mkdirSync(path.join(opts.dir, 'best'), { recursive: true });
  writeSafetensors(path.join(opts.dir, 'best', 'params.safetensors'), best);
  fs.writeFileSync(path.join(opts.dir, 'best', 'metrics.json'), JSON.stringify({ step: bestStep, metrics: { accuracy: 0.875 }, main: 0.875 }));
  const lines = [
    { type: 'train', step: 10, epoch: 1, loss: 0.69, lr: 1e-3, examplesPerSec: 100, elapsedSec: 1 },
    { type: 'eval', step: bestStep, epoch: 1, split: 'dev', metrics: { accuracy: 0.875 }, main: 0.875 },
    { type: 'eval', step: lastStep, epoch: 1, split: 'dev', metrics: { accuracy: 0.75 }, main: 0.75 },
  ];
  fs.writeFileSync(path.join(opts.dir, 'metrics.jsonl'), lines.map((l) => JSON.stringify(l)).join('\n') + '\n');
  fs.writeFileSync(path.join(opts.dir, 'config.json'), JSON.stringify({ artifacts, task: opts.task ?? null, backend: 'native', seed: 42 }, null, 2));
  return { dir: opts.dir, artifacts, manifest, best, last, lastStep, bestStep };
}

export interface Batch {
  inputIds: number[][];
  tokenTypeIds?: number[][];
  attentionMask?: number[][];
}

function int64(rows: number[][]): ort.Tensor {
  return new ort.Tensor('int64', BigInt64Array.from(rows.flat().map((v) => BigInt(v))), [rows.length, rows[0]!.length]);
}

export function batchFeeds(b: Batch): Record<string, ort.Tensor> {
  return {
    input_ids: int64(b.inputIds),
    attention_mask: int64(b.attentionMask ?? b.inputIds.map((r) => r.map(() => 1))),
    token_type_ids: int64(b.tokenTypeIds ?? b.inputIds.map((r) => r.map(() => 0))),
  };
}

/**
 * Logits of the artifacts' own eval model with the given parameter values fed as inputs: the
 * reference that a merged model must reproduce (it is what training evaluated).
 */
export async function evalLogits(run: FakeRun, values: Map<string, { shape: number[]; data: Float32Array }>, batch: Batch): Promise<Float32Array> {
  const spec = run.manifest.native!.eval;
  const session = await ort.InferenceSession.create(path.join(run.artifacts, spec.file));
  const feeds: Record<string, ort.Tensor> = batchFeeds(batch);
  for (const io of spec.inputs) {
    if (io.role === 'parameter') {
      const v = values.get(io.parameter ?? io.name)!;
      feeds[io.name] = new ort.Tensor('float32', v.data, v.shape);
    } else if (io.role === 'labels') {
      const n = batch.inputIds.length;
      feeds[io.name] = io.dtype === 'int64' ? new ort.Tensor('int64', new BigInt64Array(n), [n]) : new ort.Tensor('float32', new Float32Array(n), [n]);
    }
  }
  const out = await session.run(feeds);
  await session.release();
  return out.logits!.data as Float32Array;
}

/** Logits of an ONNX model file or bytes in onnxruntime-node. */
export async function modelLogits(model: string | Uint8Array, batch: Batch): Promise<Float32Array> {
  const session = typeof model === 'string' ? await ort.InferenceSession.create(model) : await ort.InferenceSession.create(model);
  const feeds = batchFeeds(batch);
  for (const k of Object.keys(feeds)) if (!session.inputNames.includes(k)) delete feeds[k];
  const out = await session.run(feeds);
  await session.release();
  return out.logits!.data as Float32Array;
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

/** Ids of two short sequences (batch 2, padded to 7) that exercise masking and token types. */
export const SAMPLE: Batch = {
  inputIds: [[101, 2023, 3185, 2001, 2307, 102, 0], [101, 1037, 2204, 2154, 102, 2307, 102]],
  attentionMask: [[1, 1, 1, 1, 1, 1, 0], [1, 1, 1, 1, 1, 1, 1]],
  tokenTypeIds: [[0, 0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 1, 1]],
};

/** The CLI with this area's four commands (registered in src/cli/commands/index.ts; added here only if absent). */
const ENTRY = `
import { commands } from './src/cli/commands/index.ts';
import { register as exportCmd } from './src/cli/commands/export.ts';
import { register as merge } from './src/cli/commands/merge.ts';
import { register as serveModel } from './src/cli/commands/serve-model.ts';
import { register as predict } from './src/cli/commands/predict.ts';
for (const r of [exportCmd, merge, serveModel, predict]) if (!commands.includes(r)) commands.push(r);
const { main } = await import('./src/cli/main.ts');
await main(['node', 'modtune', ...process.argv.slice(1)]);
`;

export function modtune(...args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', ENTRY, ...args], { cwd: ROOT, encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}
