/**
 * Without --lr the rate follows the selection's size: full fine-tuning 2e-5, single modules 1e-4,
 * LayerNorms / biases / the classifier 1e-3; the rate used is recorded in the manifest and the run.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { defaultLearningRate } from '../../src/artifacts/default-lr.js';
import { generateArtifacts } from '../../src/artifacts/generate.js';
import { train } from '../../src/train/index.js';
import { GLUE, tmpDir, VOCAB } from '../helpers/paths.js';
import { writeBase } from '../export/helpers.js';

let dir: string;
let base: string;
beforeAll(() => {
  dir = tmpDir('modtune-lr-');
  base = writeBase(dir);
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('default learning rate', () => {
  it('follows the trainable share (bert-base counts from modtune inspect)', () => {
    const total = 109_482_240 + 1_538;
    expect(defaultLearningRate(total, total)).toBe(2e-5); // full
    expect(defaultLearningRate(28_348_416 + 7_087_104 * 4, total)).toBe(2e-5); // attention + intermediate
    expect(defaultLearningRate(7_087_104, total)).toBe(1e-4); // query
    expect(defaultLearningRate(590_592, total)).toBe(1e-4); // pooler
    expect(defaultLearningRate(38_400 + 1_538, total)).toBe(1e-3); // layernorm (+ head)
    expect(defaultLearningRate(102_722, total)).toBe(1e-3); // bias (BitFit)
    expect(defaultLearningRate(1_538, total)).toBe(1e-3); // classifier
  });

  it('artifacts record it; a given --lr wins', () => {
    const ln = generateArtifacts({ model: base, train: 'layernorm', task: 'sst2', out: path.join(dir, 'ln'), tokenizer: VOCAB, maxLength: 64 });
    expect(ln.manifest.optimizer.lr).toBe(1e-3);
    const full = generateArtifacts({ model: base, train: 'full', task: 'sst2', out: path.join(dir, 'full'), tokenizer: VOCAB, maxLength: 64 });
    expect(full.manifest.optimizer.lr).toBe(2e-5);
    const given = generateArtifacts({ model: base, train: 'layernorm', task: 'sst2', out: path.join(dir, 'given'), tokenizer: VOCAB, maxLength: 64, lr: 3e-4 });
    expect(given.manifest.optimizer.lr).toBe(3e-4);
  });

  it('train without --lr uses and records the selection\'s default, and prints it', async () => {
    const out = path.join(dir, 'run');
    const lines: string[] = [];
    await train({ model: base, train: 'layernorm', task: 'sst2', tokenizer: VOCAB, data: GLUE, maxLength: 64, maxSteps: 2, batchSize: 8, limitTrain: 32, limitEval: 16, out, cacheDir: path.join(dir, 'cache'), log: (l: string) => lines.push(l) });
    expect(JSON.parse(fs.readFileSync(path.join(out, 'config.json'), 'utf8')).lr).toBe(1e-3);
    expect(lines.join('\n')).toMatch(/lr 0\.001 /);
  });
});
