import { describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ckptFloat32, encodeCheckpoint, readCheckpoint } from '../../../src/artifacts/ort/checkpoint.js';
import { buildAdamWOptimizerModel } from '../../../src/artifacts/ort/optimizer.js';
import { buildOrtCheckpoint, buildOrtTrainingModels } from '../../../src/artifacts/ort/training-model.js';
import { createTrainingSession, heapGuardInstalled, loadOrtTraining } from '../../../src/runtime/ort-training.js';
import { encodeModel } from '../../../src/onnx/io.js';
import { ORT_REFERENCE } from '../../helpers/paths.js';
import { tinyBatch, tinyMlp } from './tiny-models.js';

const ref = (f: string) => fs.readFileSync(path.join(ORT_REFERENCE, f));
const reference = () => ({ checkpoint: ref('checkpoint.ckpt'), trainModel: ref('training_model.onnx'), evalModel: ref('eval_model.onnx'), optimizerModel: ref('adamw.onnx') });

function tinyArtifacts() {
  const mlp = tinyMlp(8);
  const built = buildOrtTrainingModels(mlp.model, { loss: 'loss', trainable: ['fc2.weight', 'fc2.bias'], frozen: ['fc1.weight', 'fc1.bias'], gradients: mlp.gradients, lossSeed: mlp.seed });
  return {
    checkpoint: encodeCheckpoint(buildOrtCheckpoint(built.parameters, new Set(['fc2.weight', 'fc2.bias']))),
    trainModel: encodeModel(built.training),
    evalModel: encodeModel(built.eval),
    optimizerModel: encodeModel(buildAdamWOptimizerModel({ lr: 0.01, beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 0, schedule: { kind: 'constant', warmupSteps: 0, totalSteps: 0 } })),
  };
}

describe('onnxruntime-web training build under Node', () => {
  it('loads once per process with one thread count', async () => {
    const ort = await loadOrtTraining({ numThreads: 1 });
    expect(typeof ort.TrainingSession.create).toBe('function');
    expect(ort.env.versions?.web).toBe('1.19.2');
    expect(await loadOrtTraining()).toBe(ort);
    await expect(loadOrtTraining({ numThreads: 2 })).rejects.toThrow(/already runs with 1 thread\(s\) in this process; cannot switch to 2/);
    await expect(loadOrtTraining({ numThreads: 0 })).rejects.toThrow(/numThreads must be a positive integer/);
  });

  it('parameter read/write no longer corrupts the wasm heap for later sessions', async () => {
    // Without the guard, getContiguousParameters/loadParametersBuffer free a stack address and the
    // next session creation traps ("table index is out of bounds").
    const artifacts = tinyArtifacts();
    const first = await createTrainingSession(artifacts);
    expect(heapGuardInstalled()).toBe(true);
    const values = await first.getContiguousParameters(true);
    for (let i = 0; i < 20; i++) {
      await first.loadParametersBuffer(values, true);
      await first.getContiguousParameters(false);
    }
    await first.release();
    for (let i = 0; i < 3; i++) {
      const next = await createTrainingSession(artifacts);
      const b = tinyBatch(8, i);
      const out = await next.runTrainStep({ x: new next.ort.Tensor('float32', b.x, [8, 4]), labels: new next.ort.Tensor('int64', b.labels, [8]) });
      expect(Number.isFinite(out.loss!.data[0] as number)).toBe(true);
      expect(Array.from(await next.getContiguousParameters(true))).toEqual(Array.from(values));
      await next.release();
    }
  });

  it('turns bare native failures into messages naming the step and file', async () => {
    const s = await createTrainingSession(reference(), { labels: { trainModel: 'ref/training_model.onnx' } });
    const labels = new s.ort.Tensor('int32', Int32Array.from([1, 1]), [2]);
    const wrong = new s.ort.Tensor('float32', new Float32Array(2 * 783), [2, 783]);
    await expect(s.runTrainStep({ 'input-0': wrong, labels })).rejects.toThrow(
      /^onnxruntime-web: train step \(ref\/training_model\.onnx\) failed: .*GEMM: Dimension mismatch/,
    );
    await expect(s.runTrainStep({ 'input-0': wrong })).rejects.toThrow(/train step .* failed: input 'labels' is missing in 'feeds'/);
    await expect(s.loadParametersBuffer(new Float32Array(3))).rejects.toThrow(/loading parameters failed: Size of the buffer/);
    await s.release();

    const art = reference();
    await expect(createTrainingSession({ ...art, optimizerModel: art.trainModel }, { labels: { optimizerModel: 'out/optimizer_model.onnx' } })).rejects.toThrow(
      /^onnxruntime-web: creating the training session failed: out\/optimizer_model\.onnx was refused: ORT gave no message \(native error \d+\) \(ORT expects inputs learning_rate, step, params/,
    );
    await expect(createTrainingSession({ ...art, evalModel: art.evalModel.subarray(0, 200) }, { labels: { evalModel: 'out/eval_model.onnx' } })).rejects.toThrow(
      /^onnxruntime-web: creating the training session failed: out\/eval_model\.onnx: not a valid ONNX model/,
    );
    await expect(createTrainingSession({ ...art, checkpoint: art.checkpoint.subarray(0, 64) }, { labels: { checkpoint: 'out/checkpoint' } })).rejects.toThrow(
      /^onnxruntime-web: creating the training session failed: out\/checkpoint: .*Checkpoint verification failed/,
    );
  });

  it('names the checkpoint when its optimizer state is what ORT refuses', async () => {
    const art = reference();
    const c = readCheckpoint(art.checkpoint);
    const bad = buildOrtCheckpoint(
      c.trainable.map((t) => ({ name: t.name, dims: t.dims, data: ckptFloat32(t) })),
      new Set(c.trainable.map((t) => t.name)),
      { optimizer: { step: 3 } },
    );
    bad.optimizerGroups[0]!.states[1]!.momentums.pop();
    await expect(createTrainingSession({ ...art, checkpoint: encodeCheckpoint(bad) }, { labels: { checkpoint: 'run/checkpoint' } })).rejects.toThrow(
      "onnxruntime-web: creating the training session failed: run/checkpoint: optimizer group 'group0' must hold momentum0 and momentum1 for every trainable parameter; 'fc1.weight' has [momentum0]",
    );
  });
});
