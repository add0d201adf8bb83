import { describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { NativeBackend, registerBackend, train, type TrainBackend } from '../../src/train/index.js';
import { translateRunError } from '../../src/train/backends/ort-errors.js';
import { GLUE, tmpDir } from '../helpers/paths.js';
import { tinyArtifacts } from './helpers.js';

describe('backends plug in by name', () => {
  it('the trainer drives a registered backend; an out-of-memory step is reported with batch advice and leaves no run folder', async () => {
    const calls: string[] = [];
    // In this test process, 'ort-web' is replaced by the native backend whose training step runs out of memory.
    registerBackend('ort-web', {
      format: 'native',
      async create(opts) {
        const inner = await NativeBackend.create(opts);
        const backend: TrainBackend = Object.assign(Object.create(inner) as TrainBackend, {
          async trainStep(batch: Parameters<TrainBackend['trainStep']>[0]) {
            calls.push(`trainStep ${batch.batch}`);
            throw translateRunError(new Error('std::bad_alloc'), { file: 'train_step.onnx', what: 'a training step', batch: batch.batch, seqLen: batch.seqLen, batchSize: opts.batchSize });
          },
        });
        return backend;
      },
    });
    const artifacts = tinyArtifacts({ task: 'sst2', train: 'layernorm' });
    const out = path.join(tmpDir(), 'run');
    const err = await train({ artifacts, task: 'sst2', backend: 'ort-web', limitTrain: 16, limitEval: 8, batchSize: 16, maxSteps: 1, out, data: GLUE, cacheDir: false, threads: 1 })
      .catch((e: Error) => e);
    expect(calls).toEqual(['trainStep 16']);
    expect((err as Error).message).toMatch(/^out of memory running a training step on a batch of 16×\d+ tokens \(ONNX Runtime: std::bad_alloc\): the batch does not fit in memory; try a smaller --batch-size with --grad-accum .*--batch-size 8 --grad-accum 2/);
    expect(fs.existsSync(out)).toBe(false);
  });
});
