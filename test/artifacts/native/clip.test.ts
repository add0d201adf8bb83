/**
 * `maxGradNorm` through the whole native train step: gradients accumulated over two micro-batches,
 * scaled by grad_scale, masked, then clipped by their global norm before the update. The expected
 * update is computed by hand from the gradient model's own gradients.
 */
import { afterAll, describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { generateArtifacts } from '../../../src/artifacts/generate.js';
import { readSafetensors } from '../../../src/bert/safetensors.js';
import { CLIP_EPSILON } from '../../../src/artifacts/native/optimizer.js';
import { tmpDir, VOCAB } from '../../helpers/paths.js';
import { writeTinyModel } from '../../train/helpers.js';

const work = tmpDir('modtune-clip-');
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));
const model = writeTinyModel(path.join(work, 'model'));

function build(name: string, maxGradNorm?: number) {
  return generateArtifacts({
    model, out: path.join(work, name), task: 'sst2', train: 'layernorm:random=50%,classifier', optimizer: 'sgd', weightDecay: 0,
    dropout: 0, tokenizer: VOCAB, lr: 0.1, lrSchedule: 'constant', maxGradNorm,
  });
}

const BATCH = 3, SEQ = 8;
function batchFeeds(seed: number): Record<string, ort.Tensor> {
  const ids = BigInt64Array.from({ length: BATCH * SEQ }, (_, i) => BigInt(1000 + ((i * 7919 + seed * 104729) % 20000)));
  return {
    input_ids: new ort.Tensor('int64', ids, [BATCH, SEQ]),
    attention_mask: new ort.Tensor('int64', new BigInt64Array(BATCH * SEQ).fill(1n), [BATCH, SEQ]),
    token_type_ids: new ort.Tensor('int64', new BigInt64Array(BATCH * SEQ), [BATCH, SEQ]),
    labels: new ort.Tensor('int64', BigInt64Array.from({ length: BATCH }, (_, i) => BigInt((i + seed) % 2)), [BATCH]),
  };
}

describe('--max-grad-norm in the native train step', () => {
  it('is recorded in the manifest: 1.0 by default, 0 for none', () => {
    expect(build('default').manifest.optimizer.maxGradNorm).toBe(1);
    expect(build('none', 0).manifest.optimizer.maxGradNorm).toBe(0);
    expect(() => build('bad', -2)).toThrow(/--max-grad-norm must be a number ≥ 0.*got -2/);
  });

  it('clips (accumulator + gradient) × grad_scale, masked, by its global norm, as clip_grad_norm_ does', async () => {
    const maxGradNorm = 0.01;
    const art = build('clipped', maxGradNorm);
    const m = art.manifest;
    expect(m.optimizer.maxGradNorm).toBe(maxGradNorm);
    const params = readSafetensors(path.join(art.dir, m.initialValues)).tensors;
    const masks = readSafetensors(path.join(art.dir, m.masks!)).tensors;
    expect(masks.size).toBeGreaterThan(0);
    const opts = { graphOptimizationLevel: 'all' as const, intraOpNumThreads: 1 };
    const gradient = await ort.InferenceSession.create(path.join(art.dir, m.native!.gradient.file), opts);
    const step = await ort.InferenceSession.create(path.join(art.dir, m.native!.trainStep.file), opts);
    const paramFeeds = (acc: Map<string, Float32Array> | null) => Object.fromEntries(m.parameters.flatMap((p) => [
      [p.name, new ort.Tensor('float32', params.get(p.name)!.data, p.shape)],
      [`${p.name}.grad_accumulator`, new ort.Tensor('float32', acc?.get(p.name) ?? new Float32Array(p.size), p.shape)],
    ]));
    const gradOf = async (seed: number) => {
      const out = await gradient.run({ ...batchFeeds(seed), ...paramFeeds(null) });
      return new Map(m.parameters.map((p) => [p.name, out[`${p.name}.grad_accumulator.updated`]!.data as Float32Array]));
    };
    const g1 = await gradOf(1);
    const g2 = await gradOf(2);

    const lr = 0.1, gradScale = 0.5;
    const out = await step.run({
      ...batchFeeds(2), ...paramFeeds(g1),
      learning_rate: new ort.Tensor('float32', Float32Array.of(lr), []),
      step: new ort.Tensor('float32', Float32Array.of(1), []),
      grad_scale: new ort.Tensor('float32', Float32Array.of(gradScale), []),
    });

    // By hand, in float64: G = mask · (g1 + g2) · scale; coef = min(1, max / (‖G‖ + 1e-6)); p − lr·coef·G.
    const G = new Map(m.parameters.map((p) => {
      const mask = masks.get(p.name)?.data;
      return [p.name, Array.from(g1.get(p.name)!, (v, i) => (mask ? mask[i]! : 1) * (v + g2.get(p.name)![i]!) * gradScale)];
    }));
    const norm = Math.sqrt([...G.values()].reduce((s, g) => s + g.reduce((a, v) => a + v * v, 0), 0));
    const coef = Math.min(1, maxGradNorm / (norm + CLIP_EPSILON));
    expect(norm).toBeGreaterThan(10 * maxGradNorm); // clipping engages
    let worst = 0;
    let moved = 0;
    for (const p of m.parameters) {
      const got = out[`${p.name}.updated`]!.data as Float32Array;
      const p0 = params.get(p.name)!.data;
      const g = G.get(p.name)!;
      for (let i = 0; i < p.size; i++) {
        const want = p0[i]! - lr * coef * g[i]!;
        worst = Math.max(worst, Math.abs(got[i]! - want) / Math.max(1e-3, Math.abs(p0[i]! - want)));
        if (got[i] !== p0[i]) moved++;
      }
    }
    // Relative to the size of the step itself: the clipped step is right to float32 accuracy.
    expect(worst).toBeLessThan(2e-3);
    expect(moved).toBeGreaterThan(0);
    // The total step length is exactly the clipped one: lr · maxGradNorm.
    let len = 0;
    for (const p of m.parameters) {
      const got = out[`${p.name}.updated`]!.data as Float32Array;
      const p0 = params.get(p.name)!.data;
      for (let i = 0; i < p.size; i++) len += (got[i]! - p0[i]!) ** 2;
    }
    expect(Math.sqrt(len)).toBeCloseTo(lr * maxGradNorm, 5);
    await gradient.release();
    await step.release();
  });
});
