import { afterAll, describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readSafetensors } from '../../src/bert/safetensors.js';
import { generateArtifacts } from '../../src/artifacts/generate.js';
import { readGlueSplit } from '../../src/data/glue-reader.js';
import { exportDelta } from '../../src/export/export.js';
import { mergeFiles } from '../../src/export/merge.js';
import { Predictor } from '../../src/predict/predictor.js';
import { train } from '../../src/train/index.js';
import { GLUE, tmpDir, VOCAB } from '../helpers/paths.js';
import { evalLogits, FakeRun, maxAbsDiff, writeBase } from './helpers.js';

const dir = tmpDir('modtune-trained-');
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('export after a real training run', () => {
  it('exports, merges and predicts what the trainer trained (masked selection)', async () => {
    const base = writeBase(dir);
    const artifacts = path.join(dir, 'artifacts');
    const gen = generateArtifacts({ model: base, train: 'layernorm:random=50%', task: 'sst2', out: artifacts, dropout: 0, maxLength: 64, tokenizer: VOCAB });
    expect(gen.manifest.masks).not.toBeNull();
    const runDir = path.join(dir, 'run');
    await train({ artifacts, task: 'sst2', out: runDir, data: GLUE, cacheDir: false, threads: 1, limitTrain: 32, limitEval: 16, batchSize: 8, epochs: 2, lr: 1e-2, maxLength: 64 });

    for (const checkpoint of ['best', 'last']) {
      const delta = exportDelta({ run: runDir, checkpoint, out: path.join(dir, `delta-${checkpoint}`) });
      const merged = path.join(dir, `tuned-${checkpoint}.onnx`);
      mergeFiles({ base, delta: delta.dir, out: merged });
      // Reference: the artifacts' eval model fed the checkpoint's own values.
      const paramsFile = checkpoint === 'best' ? path.join(runDir, 'best', 'params.safetensors') : path.join(runDir, 'checkpoints', fs.readFileSync(path.join(runDir, 'checkpoints', 'LATEST'), 'utf8').trim(), 'params.safetensors');
      const values = new Map([...readSafetensors(paramsFile).tensors].map(([k, t]) => [k, { shape: gen.manifest.parameters.find((p) => p.name === k)!.shape, data: t.data }]));
      // Training moved the trainable entries (the export checked that masked-out ones did not).
      const initial = readSafetensors(path.join(artifacts, 'params.safetensors')).tensors;
      const moved = Math.max(...[...values].map(([k, t]) => maxAbsDiff(t.data, initial.get(k)!.data)));
      expect(moved).toBeGreaterThan(1e-4);
      const p = await Predictor.load({ base: merged });
      const texts = readGlueSplit('sst2', 'dev', GLUE).examples.slice(0, 4).map((e) => e.textA);
      const enc = p.encode(texts);
      for (const [i, e] of enc.entries()) {
        const got = (await p.logits([e]))[0]!;
        const run = { artifacts, manifest: gen.manifest } as FakeRun;
        const expected = await evalLogits(run, values, { inputIds: [e.inputIds], tokenTypeIds: [e.tokenTypeIds] });
        expect(maxAbsDiff(got, expected), `${checkpoint} #${i}`).toBeLessThanOrEqual(1e-5);
      }
      await p.release();
      if (checkpoint === 'best') expect(delta.manifest.checkpoint.metrics).not.toBeNull();
    }
  });
});
