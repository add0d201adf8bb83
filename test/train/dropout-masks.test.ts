/**
 * The dropout masks the native backend draws (src/train/backends/dropout-masks.ts): their
 * statistics, their keys, and a backend whose masks follow from the seed, the update and the
 * micro-batch — so that a backend started at update k (a resumed run) trains exactly as one that
 * took the first k updates itself.
 */
import { describe, expect, it } from 'vitest';
import * as path from 'node:path';
import { drawDropoutMask } from '../../src/train/backends/dropout-masks.js';
import { NativeBackend } from '../../src/train/backends/native.js';
import { readManifest } from '../../src/artifacts/generate.js';
import { makeBatches } from '../../src/data/batching.js';
import { loadTaskSplit } from '../../src/train/data.js';
import { getGlueTask } from '../../src/data/glue-tasks.js';
import { loadTokenizer } from '../../src/data/tokenizer.js';
import type { TensorMap } from '../../src/train/backends/types.js';
import { GLUE } from '../helpers/paths.js';
import { tinyArtifacts } from './helpers.js';

const mask = (n: number, ratio: number, seed: number, key: string) => {
  const out = new Uint8Array(n);
  drawDropoutMask(out, ratio, seed, key);
  return out;
};

describe('dropout mask draws', () => {
  it('keep each entry with probability 1 − ratio, independently of its neighbours, over several kernel chunks', () => {
    const n = 3 * 65536 + 7;
    for (const ratio of [0.1, 0.5]) {
      const m = mask(n, ratio, 1, 'k');
      expect(m.every((v) => v === 0 || v === 1)).toBe(true);
      const kept = m.reduce((s, v) => s + v, 0) / n;
      // Five standard deviations of a binomial proportion.
      const sd = Math.sqrt((ratio * (1 - ratio)) / n);
      expect(Math.abs(kept - (1 - ratio))).toBeLessThan(5 * sd);
      // Pairs at distance 1, 4 and 16 (lanes, vectors): kept together as often as independence says.
      for (const d of [1, 4, 16]) {
        let both = 0;
        for (let i = 0; i + d < n; i++) both += m[i]! & m[i + d]!;
        const p = (1 - ratio) ** 2;
        expect(Math.abs(both / (n - d) - p), `distance ${d}`).toBeLessThan(5 * Math.sqrt((p * (1 - p)) / n));
      }
      // The tail past the last whole vector is drawn too, not left at 0.
      expect(m.subarray(n - 7).some((v) => v === 1)).toBe(true);
    }
  });

  it('the same seed and key give the same mask; another seed or key, another', () => {
    const a = mask(100_000, 0.1, 7, 'update 3 micro-batch 0 /dropout/layer.0/output.mask');
    expect(mask(100_000, 0.1, 7, 'update 3 micro-batch 0 /dropout/layer.0/output.mask')).toEqual(a);
    for (const other of [mask(100_000, 0.1, 8, 'update 3 micro-batch 0 /dropout/layer.0/output.mask'), mask(100_000, 0.1, 7, 'update 4 micro-batch 0 /dropout/layer.0/output.mask')]) {
      let same = 0;
      for (let i = 0; i < a.length; i++) same += a[i] === other[i] ? 1 : 0;
      // Independent masks agree on 0.82 of the entries (0.9² + 0.1²), not all.
      expect(same / a.length).toBeLessThan(0.85);
    }
    expect(mask(1000, 0, 1, 'k').every((v) => v === 1)).toBe(true);
    expect(() => mask(10, 1, 1, 'k')).toThrow(/outside \[0, 1\)/);
  });
});

describe('native backend dropout', () => {
  it('a backend started at update 2 with the state after 2 updates continues exactly as the one that took them', async () => {
    const artifacts = tinyArtifacts({ task: 'sst2', train: 'attention', dropout: 0.3 });
    const manifest = readManifest(artifacts);
    expect(manifest.native!.gradient.inputs.filter((i) => i.role === 'dropout_mask').length).toBeGreaterThan(0);
    const ds = loadTaskSplit(getGlueTask('sst2'), 'train', { dir: GLUE, tokenizer: loadTokenizer(path.join(artifacts, 'vocab.txt')), maxLength: 64, cacheDir: false, limit: 48 });
    const batches = Array.from({ length: 4 }, ((loader) => () => loader.next())(makeBatches(ds, { batchSize: 8, shuffle: true, seed: 3 })));
    const base = { artifactsDir: artifacts, manifest, device: 'cpu' as const, threads: 1, gradAccum: 2 };
    const control = (step: number) => ({ learningRate: 1e-2, step, gradScale: 0.5 });
    const copy = (m: TensorMap) => new Map([...m].map(([k, v]) => [k, Float32Array.from(v)]));

    // Two updates of two micro-batches each, then a third.
    const first = await NativeBackend.create({ ...base, seed: 5 });
    const losses: number[] = [];
    for (let step = 1; step <= 3; step++) {
      losses.push((await first.accumulate(batches[0]!)).loss);
      if (step === 3) break;
      losses.push((await first.trainStep(batches[1]!, control(step))).loss);
    }
    // The same start, resumed after update 2.
    const again = await NativeBackend.create({ ...base, seed: 5 });
    for (let step = 1; step <= 2; step++) {
      await again.accumulate(batches[0]!);
      await again.trainStep(batches[1]!, control(step));
    }
    const resumed = await NativeBackend.create({ ...base, seed: 5, step: 2, parameters: copy(again.getParameters()), optimizer: copy(again.getOptimizerState()) });
    expect((await resumed.accumulate(batches[0]!)).loss).toBe(losses[4]);
    // Another seed draws other masks: the same batch, the same parameters, another loss.
    const otherSeed = await NativeBackend.create({ ...base, seed: 6, step: 2, parameters: copy(again.getParameters()), optimizer: copy(again.getOptimizerState()) });
    expect((await otherSeed.accumulate(batches[0]!)).loss).not.toBe(losses[4]);
    // Each micro-batch of an update draws its own masks: the same batch and parameters twice, two losses.
    const micro = await NativeBackend.create({ ...base, seed: 5 });
    const [m0, m1] = [(await micro.accumulate(batches[0]!)).loss, (await micro.accumulate(batches[0]!)).loss];
    expect(m0).toBe(losses[0]);
    expect(m1).not.toBe(m0);
    for (const b of [first, again, resumed, otherSeed, micro]) await b.release();
  });
});
