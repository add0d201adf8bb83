/**
 * The ort-web backend (ORT training artifacts on onnxruntime-web's training build) against the
 * native backend (standard-ops artifacts on onnxruntime-node), both driven through `TrainBackend`
 * with the same batches from one artifacts folder (`--format both`, dropout 0).
 *
 * Tolerance on parameters: 1e-5 absolute after 20 AdamW steps at lr 5e-3, i.e. 0.02% of the
 * distance AdamW can move an entry in those steps (Σ lr_t = 0.05). The two runtimes compute the
 * same graphs with different kernels (WebAssembly SIMD vs native MLAS) whose sums round
 * differently: losses and logits differ by ~1e-7 relative. AdamW divides each gradient by its own
 * running magnitude, so where a gradient is mostly cancellation (a sum over the batch of terms of
 * both signs) the rounding difference becomes a visible part of the step: measured up to 3.8e-6
 * (an embedding row of a rare token), most entries < 1e-6.
 * The attention key biases are compared separately: their exact gradient is zero (softmax does not
 * change when the same number is added to all scores of a query), so what AdamW steps them by is
 * rounding noise of either runtime; both must stay within 1e-4 of where they started.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import * as path from 'node:path';
import { generateArtifacts } from '../../src/artifacts/generate.js';
import type { Manifest } from '../../src/artifacts/manifest.js';
import { readSafetensors } from '../../src/bert/safetensors.js';
import { buildBert } from '../../src/bert/build.js';
import type { BertConfig } from '../../src/bert/config.js';
import type { Batch } from '../../src/data/batching.js';
import { saveModel } from '../../src/onnx/io.js';
import { NativeBackend } from '../../src/train/backends/native.js';
import { bakedScheduleProblem, OrtWebBackend } from '../../src/train/backends/ort-web.js';
import type { BackendOptions, TensorMap, TrainBackend } from '../../src/train/backends/types.js';
import { learningRate, type Schedule } from '../../src/train/schedule.js';
import { Rng } from '../../src/util/random.js';
import { tmpDir } from '../helpers/paths.js';

const config: BertConfig = {
  modelType: 'bert', vocabSize: 64, hiddenSize: 32, numHiddenLayers: 2, numAttentionHeads: 2, intermediateSize: 64, hiddenAct: 'gelu',
  hiddenDropoutProb: 0.1, attentionProbsDropoutProb: 0.1, classifierDropout: null, maxPositionEmbeddings: 32, typeVocabSize: 2, layerNormEps: 1e-12, padTokenId: 0,
};
const STEPS = 20;
const LR = 5e-3;
const schedule: Schedule = { kind: 'linear', peak: LR, warmupSteps: 2, totalSteps: STEPS };
const PARAM_TOL = 1e-5;
const isKeyBias = (name: string) => /attention\.self\.key\.bias$/.test(name);

let baseModel: string;

function artifacts(train: string, extra: { weightDecay?: number; optimizer?: 'adamw' | 'sgd'; freezeHead?: boolean } = {}): { dir: string; manifest: Manifest } {
  const dir = path.join(tmpDir('modtune-ortweb-'), 'artifacts');
  const { manifest } = generateArtifacts({
    model: baseModel, out: dir, train, numLabels: 2, format: 'both', lr: LR, lrSchedule: 'linear',
    warmupSteps: schedule.warmupSteps, totalSteps: STEPS, weightDecay: extra.weightDecay ?? 0, optimizer: extra.optimizer, freezeHead: extra.freezeHead, dropout: 0, seed: 2,
  });
  return { dir, manifest };
}

/**
 * `n` examples of `len` tokens (some padded) whose class decides which half of the vocabulary its
 * tokens come from: learnable in a few steps, so the dev argmax is decisive.
 */
function examples(seed: number, n: number, len = 12): Batch {
  const rng = new Rng(seed);
  const inputIds = new BigInt64Array(n * len);
  const attentionMask = new BigInt64Array(n * len);
  const tokenTypeIds = new BigInt64Array(n * len);
  const labels = new BigInt64Array(n);
  for (let r = 0; r < n; r++) {
    labels[r] = BigInt(rng.int(2));
    const real = len - rng.int(4);
    for (let c = 0; c < len; c++) {
      const i = r * len + c;
      if (c < real) {
        inputIds[i] = BigInt(c === 0 ? 2 : 3 + 30 * Number(labels[r]) + rng.int(30));
        attentionMask[i] = 1n;
        tokenTypeIds[i] = c >= real / 2 ? 1n : 0n;
      }
    }
  }
  return { inputIds, attentionMask, tokenTypeIds, labels, batch: n, seqLen: len, ids: [], indices: [], epoch: 0, step: 0 };
}

/** Rows [from, to) of a batch. */
function rows(b: Batch, from: number, to: number): Batch {
  const L = b.seqLen;
  return {
    ...b, batch: to - from,
    inputIds: b.inputIds.slice(from * L, to * L), attentionMask: b.attentionMask.slice(from * L, to * L), tokenTypeIds: b.tokenTypeIds.slice(from * L, to * L),
    labels: (b.labels as BigInt64Array).slice(from, to),
  };
}

const trainBatches = Array.from({ length: STEPS }, (_, s) => examples(100 + s, 8));
const devBatches = [examples(7, 16), examples(8, 16)];

function control(step: number, gradScale = 1) {
  return { learningRate: learningRate(step, schedule), step, gradScale };
}

async function trainSteps(b: TrainBackend, from: number, to: number): Promise<number[]> {
  const losses: number[] = [];
  for (let s = from; s <= to; s++) losses.push((await b.trainStep(trainBatches[s - 1]!, control(s))).loss);
  return losses;
}

function copy(m: TensorMap): TensorMap {
  return new Map([...m].map(([k, v]) => [k, v.slice()]));
}

/** Largest |a − b| over the tensors (both maps must hold the same names), optionally skipping some. */
function maxDiff(a: TensorMap, b: TensorMap, skip: (name: string) => boolean = () => false): number {
  expect([...b.keys()].sort()).toEqual([...a.keys()].sort());
  let d = 0;
  for (const [k, x] of a) {
    if (skip(k)) continue;
    const y = b.get(k)!;
    for (let i = 0; i < x.length; i++) d = Math.max(d, Math.abs(x[i]! - y[i]!));
  }
  return d;
}

function relDiffs(a: number[], b: number[]): number {
  expect(b).toHaveLength(a.length);
  return Math.max(...a.map((x, i) => Math.abs(x - b[i]!) / Math.abs(x)));
}

async function devPredictions(b: TrainBackend): Promise<{ argmax: number[]; losses: number[]; logits: number[] }> {
  const argmax: number[] = [];
  const losses: number[] = [];
  const logits: number[] = [];
  for (const batch of devBatches) {
    const r = await b.evaluate(batch);
    losses.push(r.loss);
    expect(r.logits).toHaveLength(batch.batch * 2);
    for (let i = 0; i < batch.batch; i++) {
      argmax.push(r.logits[2 * i + 1]! > r.logits[2 * i]! ? 1 : 0);
      logits.push(r.logits[2 * i]!, r.logits[2 * i + 1]!);
    }
  }
  return { argmax, losses, logits };
}

const options = (a: { dir: string; manifest: Manifest }, extra: Partial<BackendOptions> = {}): BackendOptions =>
  ({ artifactsDir: a.dir, manifest: a.manifest, device: 'cpu', threads: 1, ...extra });

beforeAll(() => {
  baseModel = path.join(tmpDir('modtune-ortweb-base-'), 'base.onnx');
  saveModel(buildBert({ config, seed: 4, numLabels: 2, perturbLayerNorm: true }), baseModel);
});

describe('ort-web backend', () => {
  it('trains a full selection like the native backend: loss curve, dev predictions, parameters', async () => {
    const a = artifacts('full');
    const native = await NativeBackend.create(options(a));
    const ortWeb = await OrtWebBackend.create(options(a));
    const initial = copy(ortWeb.getParameters());
    expect(maxDiff(native.getParameters(), initial)).toBe(0);

    const before = await devPredictions(ortWeb);
    const nativeLosses = await trainSteps(native, 1, STEPS);
    const ortLosses = await trainSteps(ortWeb, 1, STEPS);
    expect(relDiffs(nativeLosses, ortLosses)).toBeLessThanOrEqual(1e-4);
    // The rule is learnt: the loss falls, so the comparison is about a run that does something.
    expect(ortLosses.slice(-3).reduce((s, x) => s + x, 0) / 3).toBeLessThan(ortLosses[0]! - 0.1);

    expect(maxDiff(native.getParameters(), ortWeb.getParameters(), isKeyBias)).toBeLessThanOrEqual(PARAM_TOL);
    for (const backend of [native, ortWeb]) {
      expect(maxDiff(initial, backend.getParameters(), (n) => !isKeyBias(n))).toBeLessThan(1e-4);
    }

    const n = await devPredictions(native);
    const o = await devPredictions(ortWeb);
    expect(o.argmax).toEqual(n.argmax);
    expect(o.argmax).not.toEqual(before.argmax);
    const accuracy = (p: number[]) => p.filter((x, i) => x === Number(devBatches.flatMap((b) => [...(b.labels as BigInt64Array)])[i])).length / p.length;
    expect(accuracy(o.argmax)).toBe(accuracy(n.argmax));
    expect(accuracy(o.argmax)).toBeGreaterThan(0.7);
    expect(relDiffs(n.losses, o.losses)).toBeLessThanOrEqual(1e-4);
    expect(Math.max(...o.logits.map((x, i) => Math.abs(x - n.logits[i]!)))).toBeLessThan(1e-4);

    // Unlabelled data: logits, no loss.
    const { labels: _, ...unlabelled } = devBatches[0]!;
    const u = await ortWeb.evaluate(unlabelled);
    expect(u.loss).toBeNaN();
    expect(Array.from(u.logits)).toEqual(o.logits.slice(0, 32));
    await native.release();
    await ortWeb.release();
  });

  it('changes exactly the selected entries: frozen weights and masked entries of layernorm:top=10% stay bit for bit', async () => {
    // Weight decay asked for, but LayerNorm weights do not decay (and masked ones must not): 0 in
    // both formats. (With the head training, native would decay classifier.weight and ORT not.)
    const a = artifacts('layernorm:top=10%', { weightDecay: 0.01, freezeHead: true });
    expect(a.manifest.ort!.weightDecay).toBe(0);
    const masks = readSafetensors(path.join(a.dir, a.manifest.masks!)).tensors;
    const ortWeb = await OrtWebBackend.create(options(a));
    const native = await NativeBackend.create(options(a));
    const initial = copy(ortWeb.getParameters());
    const allBefore = (await ortWeb.allParameters()).slice();
    const trainableSize = a.manifest.parameters.reduce((s, p) => s + p.size, 0);
    expect(allBefore.length).toBeGreaterThan(trainableSize * 10);

    await trainSteps(ortWeb, 1, STEPS);
    await trainSteps(native, 1, STEPS);
    const allAfter = await ortWeb.allParameters();
    // Trainable first, then every frozen weight the checkpoint holds: the frozen part is untouched.
    expect(Buffer.from(allAfter.buffer, allAfter.byteOffset + trainableSize * 4).equals(Buffer.from(allBefore.buffer, allBefore.byteOffset + trainableSize * 4))).toBe(true);
    expect(Array.from(allAfter.subarray(0, trainableSize))).toEqual(a.manifest.ort!.trainableOrder.flatMap((n) => Array.from(ortWeb.getParameters().get(n)!)));

    const after = ortWeb.getParameters();
    let moved = 0;
    let kept = 0;
    for (const p of a.manifest.parameters) {
      const mask = p.mask ? masks.get(p.mask)!.data : new Float32Array(p.size).fill(1);
      const x = initial.get(p.name)!;
      const y = after.get(p.name)!;
      for (let i = 0; i < x.length; i++) {
        if (mask[i] === 0) {
          expect(y[i], `${p.name}[${i}] is masked`).toBe(x[i]);
          kept++;
        } else if (y[i] !== x[i]) {
          moved++;
        }
      }
    }
    const trainableEntries = a.manifest.parameters.reduce((s, p) => s + p.trainableEntries, 0);
    expect(kept).toBe(trainableSize - trainableEntries);
    expect(moved).toBe(trainableEntries);
    expect(maxDiff(native.getParameters(), after)).toBeLessThanOrEqual(PARAM_TOL);
    await ortWeb.release();
    await native.release();
  });

  it('accumulates gradients: 2 micro-batches of 4 equal 1 batch of 8; updates of varying size match the native backend', async () => {
    const a = artifacts('layernorm,attention-output@1,classifier');
    const whole = await OrtWebBackend.create(options(a));
    const split = await OrtWebBackend.create(options(a, { gradAccum: 2 }));
    for (let s = 1; s <= 10; s++) {
      const b = trainBatches[s - 1]!;
      const l1 = (await whole.trainStep(b, control(s))).loss;
      const la = (await split.accumulate(rows(b, 0, 4))).loss;
      const lb = (await split.trainStep(rows(b, 4, 8), control(s, 1 / 2))).loss;
      expect(Math.abs((la + lb) / 2 - l1) / l1).toBeLessThan(1e-5);
    }
    expect(maxDiff(whole.getParameters(), split.getParameters())).toBeLessThanOrEqual(PARAM_TOL);
    await whole.release();
    await split.release();

    // Updates of 2, 2, 1, 3, 2, 4 micro-batches of 2: without `gradAccum` the backend learns K from
    // the updates, re-running the micro-batches of an update whose size it guessed wrong.
    const sizes = [2, 2, 1, 3, 2, 4];
    const native = await NativeBackend.create(options(a));
    const ortWeb = await OrtWebBackend.create(options(a));
    for (const [u, k] of sizes.entries()) {
      const parts = Array.from({ length: k }, (_, i) => rows(trainBatches[u]!, 2 * i, 2 * i + 2));
      const losses: number[][] = [[], []];
      for (const [j, backend] of [native, ortWeb].entries()) {
        for (const p of parts.slice(0, -1)) losses[j]!.push((await backend.accumulate(p)).loss);
        losses[j]!.push((await backend.trainStep(parts[k - 1]!, control(u + 1, 1 / k))).loss);
      }
      expect(relDiffs(losses[0]!, losses[1]!)).toBeLessThanOrEqual(1e-4);
    }
    expect(maxDiff(native.getParameters(), ortWeb.getParameters())).toBeLessThanOrEqual(PARAM_TOL);
    await native.release();
    await ortWeb.release();
  });

  it('resumes at a later step: given moments continue exactly, an empty optimizer state restarts them from zero', async () => {
    const a = artifacts('layernorm,classifier');
    const native = await NativeBackend.create(options(a));
    await trainSteps(native, 1, 8);
    const params8 = copy(native.getParameters());
    const moments8 = copy(native.getOptimizerState());
    expect(moments8.size).toBe(2 * a.manifest.parameters.length);

    // With the moments: the runtime is re-created at step 8 and continues as the native run does.
    const resumed = await OrtWebBackend.create(options(a, { parameters: params8, optimizer: moments8 }));
    expect(resumed.optimizerStateExact).toBe(true);
    expect(maxDiff(moments8, resumed.getOptimizerState())).toBe(0);
    const nativeLosses = await trainSteps(native, 9, STEPS);
    expect(relDiffs(nativeLosses, await trainSteps(resumed, 9, STEPS))).toBeLessThanOrEqual(1e-4);
    expect(maxDiff(native.getParameters(), resumed.getParameters())).toBeLessThanOrEqual(PARAM_TOL);
    // Moments now live in the runtime only.
    expect(resumed.optimizerStateExact).toBe(false);
    expect(resumed.getOptimizerState().size).toBe(0);

    // setState with parameters and moments (queued, applied at the next step) rewinds to step 8.
    resumed.setState({ parameters: params8, optimizer: moments8 });
    expect(maxDiff(params8, resumed.getParameters())).toBe(0);
    expect(relDiffs(nativeLosses, await trainSteps(resumed, 9, STEPS))).toBeLessThanOrEqual(1e-4);
    expect(maxDiff(native.getParameters(), resumed.getParameters())).toBeLessThanOrEqual(PARAM_TOL);

    // What an ort-web checkpoint holds (no moments): step 8 with zero moments, as native with zeros.
    const zeros = new Map([...moments8].map(([k, v]) => [k, new Float32Array(v.length)]));
    const nativeZero = await NativeBackend.create(options(a, { parameters: params8, optimizer: zeros }));
    const ortZero = await OrtWebBackend.create(options(a, { parameters: params8, optimizer: new Map(), step: 8 }));
    const zeroLosses = await trainSteps(nativeZero, 9, STEPS);
    expect(relDiffs(zeroLosses, await trainSteps(ortZero, 9, STEPS))).toBeLessThanOrEqual(1e-4);
    expect(maxDiff(nativeZero.getParameters(), ortZero.getParameters())).toBeLessThanOrEqual(PARAM_TOL);
    expect(maxDiff(native.getParameters(), ortZero.getParameters())).toBeGreaterThan(1e-4);

    // Once the moments exist only in the runtime, it cannot jump to another step.
    await expect(ortZero.trainStep(trainBatches[0]!, control(3))).rejects.toThrow(/the trainer asks for update 3, but the runtime has taken 20 updates and its AdamW moments cannot be read back/);
    for (const b of [native, resumed, nativeZero, ortZero]) await b.release();
  });

  it('trains regression heads (float scores) like the native backend', async () => {
    const dir = path.join(tmpDir('modtune-ortweb-'), 'artifacts');
    const { manifest } = generateArtifacts({
      model: baseModel, out: dir, train: 'layernorm', regression: true, format: 'both', lr: LR, lrSchedule: 'linear',
      warmupSteps: schedule.warmupSteps, totalSteps: STEPS, weightDecay: 0, dropout: 0, seed: 2, newHead: true,
    });
    const a = { dir, manifest };
    const scored = (b: Batch): Batch => ({ ...b, labels: Float32Array.from(b.labels as BigInt64Array, (y) => Number(y) * 4 - 2) });
    const native = await NativeBackend.create(options(a));
    const ortWeb = await OrtWebBackend.create(options(a));
    for (let s = 1; s <= 5; s++) {
      const [l1, l2] = [(await native.trainStep(scored(trainBatches[s - 1]!), control(s))).loss, (await ortWeb.trainStep(scored(trainBatches[s - 1]!), control(s))).loss];
      expect(Math.abs(l1 - l2) / l1).toBeLessThanOrEqual(1e-4);
    }
    const [en, eo] = [await native.evaluate(scored(devBatches[0]!)), await ortWeb.evaluate(scored(devBatches[0]!))];
    expect(eo.logits).toHaveLength(16);
    expect(Math.abs(eo.loss - en.loss) / en.loss).toBeLessThanOrEqual(1e-4);
    expect(maxDiff(native.getParameters(), ortWeb.getParameters())).toBeLessThanOrEqual(PARAM_TOL);
    // Class indices for a regression head are refused by name.
    await expect(ortWeb.evaluate(devBatches[0]!)).rejects.toThrow(/labels are scores \(float32\) but the data has class indices; the artifacts were built for regression/);
    await native.release();
    await ortWeb.release();
  });

  it('leaves the state as it was when the loss is not finite', async () => {
    // SGD at an absurd rate: the first update overflows the LayerNorm weights, the next loss is NaN.
    const dir = path.join(tmpDir('modtune-ortweb-'), 'artifacts');
    const { manifest } = generateArtifacts({ model: baseModel, out: dir, train: 'layernorm', numLabels: 2, format: 'ort', optimizer: 'sgd', lr: 1e30, lrSchedule: 'constant', weightDecay: 0, dropout: 0 });
    const ortWeb = await OrtWebBackend.create(options({ dir, manifest }));
    const sgd = (step: number) => ({ learningRate: 1e30, step, gradScale: 1 });
    expect(Number.isFinite((await ortWeb.trainStep(trainBatches[0]!, sgd(1))).loss)).toBe(true);
    const broken = copy(ortWeb.getParameters());
    expect([...broken.values()].some((v) => v.some((x) => !Number.isFinite(x)))).toBe(true);
    const bytes = (m: TensorMap) => Buffer.concat([...m.values()].map((v) => Buffer.from(v.buffer, v.byteOffset, v.byteLength)));
    expect((await ortWeb.accumulate(rows(trainBatches[1]!, 0, 4))).loss).toBeNaN();
    expect((await ortWeb.trainStep(rows(trainBatches[1]!, 4, 8), sgd(2))).loss).toBeNaN();
    expect(bytes(ortWeb.getParameters()).equals(bytes(broken))).toBe(true);
    expect(bytes(copy(new Map([['all', await ortWeb.allParameters()]]))).subarray(0, bytes(broken).length).equals(bytes(broken))).toBe(true);
    await ortWeb.release();
  });

  it('refuses a learning rate other than the baked schedule, CUDA, and artifacts without ORT models', async () => {
    const a = artifacts('layernorm');
    const ortWeb = await OrtWebBackend.create(options(a));
    const before = copy(ortWeb.getParameters());
    // The trainer's schedule for 30 steps, not the 20 baked in: the rates differ from step 4 on.
    const other: Schedule = { ...schedule, totalSteps: 30 };
    expect(bakedScheduleProblem(a.manifest, schedule)).toBeUndefined();
    expect(bakedScheduleProblem(a.manifest, other)).toMatch(/baked in \(lr 0.005, linear schedule, 2 warmup steps, 20 total steps\), but this run uses lr 0.005, linear schedule, 2 warmup steps, 30 total steps/);
    for (let s = 1; s <= 3; s++) await ortWeb.trainStep(trainBatches[s - 1]!, { learningRate: learningRate(s, other), step: s, gradScale: 1 });
    const at3 = copy(ortWeb.getParameters());
    expect(maxDiff(before, at3)).toBeGreaterThan(0);
    await expect(ortWeb.trainStep(trainBatches[3]!, { learningRate: learningRate(4, other), step: 4, gradScale: 1 })).rejects.toThrow(
      /update 4 would run at learning rate 0\.00472\d* \(baked into .*optimizer_model\.onnx: lr 0\.005, linear schedule, 2 warmup steps, 20 total steps\), but the trainer's schedule says 0\.00482/,
    );
    expect(maxDiff(at3, ortWeb.getParameters())).toBe(0);
    await ortWeb.release();

    await expect(OrtWebBackend.create(options(a, { device: 'cuda' }))).rejects.toThrow(/--device cuda: the ort-web backend runs onnxruntime-web's training build, which has only the CPU \(WebAssembly\) provider/);
    const native = path.join(tmpDir(), 'native-only');
    const { manifest } = generateArtifacts({ model: baseModel, out: native, train: 'layernorm', numLabels: 2, format: 'native', dropout: 0 });
    await expect(OrtWebBackend.create({ artifactsDir: native, manifest, device: 'cpu', threads: 1 })).rejects.toThrow(/no ORT training artifacts \(manifest.json has no 'ort' section\); rebuild them with --format ort or both/);
  });
});
