import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { defaultModel, packagedModelDir, randomControlModel } from '../../src/bert/default-model.js';
import { runDemo } from '../../src/demo/index.js';
import { readModelFolder } from '../../src/pretrain/model-folder.js';
import { GLUE, tmpDir } from '../helpers/paths.js';
import { compareWithTorch } from '../pretrain/torch-reference.js';

const root = tmpDir('modtune-demo-');
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

describe('the embedded pretrained default', () => {
  it('is a masked-LM folder with its vocabulary, whose logits PyTorch reproduces', async () => {
    const dir = packagedModelDir();
    const folder = readModelFolder(dir);
    expect(folder.config.numHiddenLayers).toBe(4);
    expect(folder.config.hiddenSize).toBe(256);
    expect(folder.tokenizer).toBe(path.join(dir, 'tokenizer.json'));
    expect(fs.readFileSync(path.join(dir, 'vocab.txt'), 'utf8').split('\n').filter(Boolean)).toHaveLength(folder.config.vocabSize);
    const record = JSON.parse(fs.readFileSync(path.join(dir, 'pretrain.json'), 'utf8'));
    // At least the 40M tokens the default was planned for, all phases counted.
    expect(record.tokensTotal).toBeGreaterThanOrEqual(40e6);
    expect(record.complete).toBe(true);
    await compareWithTorch(dir, 1e-3);
  });

  it('demo: tunes the default and the random control on SST-2 with the same budget, beside the majority baseline', async () => {
    const cacheDir = path.join(root, 'cache');
    const r = await runDemo({ data: GLUE, limitTrain: 64, batchSize: 32, threads: 2, out: path.join(root, 'demo'), cacheDir });
    expect(r.runs.map((x) => x.label)).toEqual(['pretrained default', 'random init (control)']);
    expect(r.runs[0]!.model).toBe(defaultModel(cacheDir).onnx);
    expect(r.runs[1]!.model).toBe(randomControlModel(cacheDir).onnx);
    for (const run of r.runs) {
      expect(run.summary.steps).toBe(2);
      expect(run.summary.selection).toBe('layernorm');
      expect(run.summary.finalMetrics?.accuracy).toBeGreaterThan(0.3);
    }
    // Same shape, same selection: the same number of trainable parameters.
    expect(r.runs[0]!.summary.trainableCount).toBe(r.runs[1]!.summary.trainableCount);
    expect(r.majority).toBeCloseTo(444 / 872, 6);
  });
});
