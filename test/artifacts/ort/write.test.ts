import { describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { generateArtifacts } from '../../../src/artifacts/generate.js';
import { readCheckpoint } from '../../../src/artifacts/ort/checkpoint.js';
import { ORT_FILES } from '../../../src/artifacts/ort/write.js';
import { buildBert } from '../../../src/bert/build.js';
import type { BertConfig } from '../../../src/bert/config.js';
import { loadModel, saveModel } from '../../../src/onnx/io.js';
import { createTrainingSession } from '../../../src/runtime/ort-training.js';
import { tmpDir } from '../../helpers/paths.js';

const config: BertConfig = {
  modelType: 'bert', vocabSize: 64, hiddenSize: 32, numHiddenLayers: 2, numAttentionHeads: 2, intermediateSize: 64, hiddenAct: 'gelu',
  hiddenDropoutProb: 0.1, attentionProbsDropoutProb: 0.1, classifierDropout: null, maxPositionEmbeddings: 32, typeVocabSize: 2, layerNormEps: 1e-12, padTokenId: 0,
};

function baseModel(): string {
  const dir = tmpDir();
  const file = path.join(dir, 'base.onnx');
  saveModel(buildBert({ config, seed: 9 }), file);
  return file;
}

describe('ort/ folder of an artifacts directory', () => {
  it('is written by generateArtifacts and trains in onnxruntime-web', async () => {
    const out = path.join(tmpDir(), 'artifacts');
    const r = generateArtifacts({
      model: baseModel(), out, train: 'layernorm@1,classifier', numLabels: 2, format: 'ort',
      lr: 0.01, lrSchedule: 'linear', warmupSteps: 2, totalSteps: 20, weightDecay: 0, dropout: 0, seed: 1,
    });
    const m = r.manifest.ort!;
    expect(m).toMatchObject({
      training: 'ort/training_model.onnx', eval: 'ort/eval_model.onnx', optimizer: 'ort/optimizer_model.onnx', checkpoint: 'ort/checkpoint',
      userInputs: ['input_ids', 'attention_mask', 'token_type_ids', 'labels'], userOutputs: ['loss', 'logits'],
    });
    expect(m.trainableOrder).toEqual(r.manifest.parameters.map((p) => p.name));
    expect(m.trainableOrder).toContain('bert.encoder.layer.1.output.LayerNorm.weight');
    for (const f of Object.values(ORT_FILES)) expect(fs.existsSync(path.join(out, 'ort', f)), f).toBe(true);

    // Frozen weights live once, in the checkpoint; the models carry no big tensors.
    const ckpt = readCheckpoint(path.join(out, m.checkpoint));
    expect(ckpt.trainable.map((t) => t.name)).toEqual(m.trainableOrder);
    expect(ckpt.frozen.map((t) => t.name)).toContain('bert.embeddings.word_embeddings.weight');
    const training = loadModel(path.join(out, m.training));
    expect([...training.graph.initializers.values()].every((t) => t.raw.byteLength < 1024)).toBe(true);

    const read = (f: string) => fs.readFileSync(path.join(out, f));
    const s = await createTrainingSession({ checkpoint: read(m.checkpoint), trainModel: read(m.training), evalModel: read(m.eval), optimizerModel: read(m.optimizer) });
    expect(s.trainingInputNames).toEqual(m.userInputs);
    expect(s.trainingOutputNames).toEqual(m.userOutputs);
    const B = 4, L = 6;
    const feeds = {
      input_ids: new s.ort.Tensor('int64', BigInt64Array.from({ length: B * L }, (_, i) => BigInt(1 + ((i * 5) % 60))), [B, L]),
      attention_mask: new s.ort.Tensor('int64', new BigInt64Array(B * L).fill(1n), [B, L]),
      token_type_ids: new s.ort.Tensor('int64', new BigInt64Array(B * L), [B, L]),
      labels: new s.ort.Tensor('int64', BigInt64Array.from([1n, 0n, 0n, 1n]), [B]),
    };
    const initial = (await s.getContiguousParameters(true)).slice();
    const losses: number[] = [];
    for (let i = 0; i < 12; i++) {
      losses.push((await s.runTrainStep(feeds)).loss!.data[0] as number);
      await s.runOptimizerStep();
      await s.lazyResetGrad();
    }
    expect(losses[11]!).toBeLessThan(losses[0]!);
    // Warmup: the first update runs at factor 0, so the parameters are unchanged after it.
    expect(losses[1]).toBe(losses[0]);
    expect(Array.from(await s.getContiguousParameters(true))).not.toEqual(Array.from(initial));
    await s.release();
  });

  it('uses one group-wide weight decay only where it is exact, and refuses a schedule it cannot bake', () => {
    const model = baseModel();
    const base = { model, train: 'attention@1', numLabels: 2, format: 'ort' as const, force: true };
    // Mixed selection (weights decay, biases do not): ORT's single group gets no decay, and says so.
    const mixed = generateArtifacts({ ...base, out: path.join(tmpDir(), 'a'), totalSteps: 10, weightDecay: 0.01 });
    expect(mixed.manifest.ort?.weightDecay).toBe(0);
    expect(mixed.manifest.optimizer.weightDecay).toBe(0.01);
    // Every selected parameter decays under Hugging Face's rule: the group decays exactly.
    const uniform = generateArtifacts({ ...base, train: 'attention@1:weight', freezeHead: true, out: path.join(tmpDir(), 'u'), totalSteps: 10, weightDecay: 0.01 });
    expect(uniform.manifest.ort?.weightDecay).toBe(0.01);
    expect(() => generateArtifacts({ ...base, out: path.join(tmpDir(), 'b'), weightDecay: 0 })).toThrow(/the number of steps must be known now; pass --total-steps/);
    // SGD is available (through AdamWOptimizer).
    const ok = generateArtifacts({ ...base, out: path.join(tmpDir(), 'c'), optimizer: 'sgd', lrSchedule: 'constant', weightDecay: 0 });
    expect(ok.manifest.ort?.trainableOrder).toEqual(ok.manifest.parameters.map((p) => p.name));
    expect(ok.manifest.ort?.trainableOrder.some((n) => n.endsWith('query.bias'))).toBe(true);
  });
});
