/**
 * The ort-web backend trains with the learning-rate schedule baked into its optimizer model; a run
 * that asks for another one is refused before it tokenizes (rate, kind) or trains (steps).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { generateArtifacts } from '../../src/artifacts/generate.js';
import { train } from '../../src/train/index.js';
import { GLUE, tmpDir, VOCAB } from '../helpers/paths.js';
import { writeBase } from '../export/helpers.js';

let dir: string;
let art: string;

beforeAll(() => {
  dir = tmpDir('modtune-baked-');
  const base = writeBase(dir);
  art = path.join(dir, 'art');
  generateArtifacts({
    model: base, train: 'layernorm', task: 'sst2', out: art, format: 'ort', lr: 1e-3, lrSchedule: 'linear',
    warmupSteps: 2, totalSteps: 20, tokenizer: VOCAB, maxLength: 64, dropout: 0,
  });
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('ort-web baked schedule', () => {
  it('another --lr or --lr-schedule is refused before any data is tokenized', async () => {
    const cacheDir = path.join(dir, 'cache');
    const out = path.join(dir, 'run-lr');
    await expect(train({ artifacts: art, task: 'sst2', backend: 'ort-web', data: GLUE, lr: 5e-4, out, cacheDir, limitTrain: 64, limitEval: 16 }))
      .rejects.toThrow(/--backend ort-web with the artifacts in .*art: the ort artifacts' optimizer_model\.onnx has the learning-rate schedule baked in \(lr 0\.001, linear schedule, 2 warmup steps, 20 total steps\), but this run uses lr 0\.0005/);
    await expect(train({ artifacts: art, task: 'sst2', backend: 'ort-web', data: GLUE, lrSchedule: 'constant', out, cacheDir, limitTrain: 64, limitEval: 16 }))
      .rejects.toThrow(/but this run uses lr 0\.001, constant schedule/);
    expect(fs.existsSync(cacheDir) ? fs.readdirSync(cacheDir, { recursive: true }) : []).toEqual([]);
    expect(fs.existsSync(out)).toBe(false);
  });

  it('other total steps are refused before the run folder is made or a step runs', async () => {
    const out = path.join(dir, 'run-steps');
    await expect(train({ artifacts: art, task: 'sst2', backend: 'ort-web', data: GLUE, maxSteps: 30, warmupRatio: 0.1, out, cacheDir: path.join(dir, 'cache2'), limitTrain: 64, limitEval: 16 }))
      .rejects.toThrow(/baked in \(lr 0\.001, linear schedule, 2 warmup steps, 20 total steps\), but this run uses lr 0\.001, linear schedule, 3 warmup steps, 30 total steps/);
    expect(fs.existsSync(out)).toBe(false);
  });
});
