import { afterAll, describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { NativeBackend, registerBackend, train, type TrainBackend } from '../../src/train/index.js';
import type { Batch } from '../../src/data/batching.js';
import { GLUE, tmpDir } from '../helpers/paths.js';
import { tinyArtifacts } from './helpers.js';

const work = tmpDir('modtune-group-');
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

/** One SST-2 epoch through a native backend that records every training batch. */
async function epoch(groupByLength: boolean) {
  const seen: Batch[] = [];
  // In this test process 'ort-web' is the native backend with its training batches recorded.
  registerBackend('ort-web', {
    format: 'native',
    async create(opts) {
      const inner = await NativeBackend.create(opts);
      return Object.assign(Object.create(inner) as TrainBackend, {
        trainStep(batch: Batch, control: Parameters<TrainBackend['trainStep']>[1]) {
          seen.push(batch);
          return inner.trainStep(batch, control);
        },
      });
    },
  });
  const out = path.join(work, `run-${groupByLength}`);
  const summary = await train({
    artifacts: artifacts(), task: 'sst2', backend: 'ort-web', limitTrain: 320, limitEval: 8, batchSize: 16, epochs: 1,
    out, data: GLUE, cacheDir: false, threads: 1, groupByLength,
  });
  const config = JSON.parse(fs.readFileSync(path.join(out, 'config.json'), 'utf8'));
  const tokens = seen.reduce((s, b) => s + b.batch * b.seqLen, 0);
  const real = seen.reduce((s, b) => s + b.attentionMask.reduce((a, v) => a + Number(v), 0), 0);
  return { config, seen, paddingShare: 1 - real / tokens, reported: summary.paddingShare, order: seen.flatMap((b) => b.indices) };
}

let built: string | undefined;
const artifacts = () => (built ??= tinyArtifacts({ task: 'sst2', train: 'layernorm' }));

describe('train --group-by-length', () => {
  it('batches examples of similar length together: every example once per epoch, far less padding (the summary says how much), recorded in config.json', async () => {
    const plain = await epoch(false);
    const grouped = await epoch(true);
    expect(plain.config.groupByLength).toBe(false);
    expect(grouped.config.groupByLength).toBe(true);
    expect([...grouped.order].sort((a, b) => a - b)).toEqual(Array.from({ length: 320 }, (_, i) => i));
    expect(grouped.seen.length).toBe(plain.seen.length);
    expect(grouped.paddingShare).toBeLessThan(plain.paddingShare / 2);
    // The run's summary reports the share of its batches' token slots that were padding.
    expect(plain.reported).toBeCloseTo(plain.paddingShare, 4);
    expect(grouped.reported).toBeCloseTo(grouped.paddingShare, 4);
    // Batches still come in a random order, not longest first.
    const lengths = grouped.seen.map((b) => b.seqLen);
    expect(lengths).not.toEqual([...lengths].sort((a, b) => b - a));
  });
});
