import { describe, expect, it } from 'vitest';
import { buildBackward } from '../../../src/autodiff/index.js';
import { encodeCheckpoint } from '../../../src/artifacts/ort/checkpoint.js';
import { buildAdamWOptimizerModel, buildSgdOptimizerModel } from '../../../src/artifacts/ort/optimizer.js';
import { buildOrtCheckpoint, buildOrtTrainingModels } from '../../../src/artifacts/ort/training-model.js';
import { buildBert } from '../../../src/bert/build.js';
import type { BertConfig } from '../../../src/bert/config.js';
import { attachHead } from '../../../src/heads/index.js';
import { discoverParameters, selectParameters } from '../../../src/modules/index.js';
import { Model } from '../../../src/onnx/graph.js';
import { encodeModel } from '../../../src/onnx/io.js';
import { tensorFloat32 } from '../../../src/onnx/tensor.js';
import { createTrainingSession } from '../../../src/runtime/ort-training.js';
import { tinyBatch, tinyMlp } from './tiny-models.js';

async function train(artifacts: ReturnType<typeof buildOrtTrainingModels>, trainable: string[], optimizer: Model) {
  return createTrainingSession({
    checkpoint: encodeCheckpoint(buildOrtCheckpoint(artifacts.parameters, new Set(trainable))),
    trainModel: encodeModel(artifacts.training),
    evalModel: encodeModel(artifacts.eval),
    optimizerModel: encodeModel(optimizer),
  });
}

describe('ORT artifacts from autodiff gradients', () => {
  it('train a tiny MLP exactly like its hand-written backward', async () => {
    const params = ['fc1.weight', 'fc1.bias', 'fc2.weight', 'fc2.bias'];
    const sgd = buildSgdOptimizerModel({ lr: 0.2, weightDecay: 0, schedule: { kind: 'constant', warmupSteps: 0, totalSteps: 0 } });
    const hand = tinyMlp(8);
    const auto = tinyMlp(8, { backward: false });
    const { gradients } = buildBackward(auto.model.graph, { loss: 'loss', wrt: params });
    const sessions = await Promise.all([
      train(buildOrtTrainingModels(hand.model, { loss: 'loss', trainable: params, gradients: hand.gradients, lossSeed: hand.seed }), params, sgd),
      train(buildOrtTrainingModels(auto.model, { loss: 'loss', trainable: params, gradients }), params, sgd),
    ]);
    const batch = tinyBatch(8, 5);
    const results: Float32Array[] = [];
    for (const s of sessions) {
      const feeds = { x: new s.ort.Tensor('float32', batch.x, [8, 4]), labels: new s.ort.Tensor('int64', batch.labels, [8]) };
      for (let i = 0; i < 3; i++) {
        await s.runTrainStep(feeds);
        await s.runOptimizerStep();
        await s.lazyResetGrad();
      }
      results.push(await s.getContiguousParameters(true));
      await s.release();
    }
    const [byHand, byAutodiff] = results as [Float32Array, Float32Array];
    const start = params.flatMap((p) => Array.from(tensorFloat32(hand.model.graph.initializers.get(p)!)));
    expect(Array.from(byHand)).not.toEqual(start);
    for (let i = 0; i < byHand.length; i++) expect(Math.abs(byAutodiff[i]! - byHand[i]!), `entry ${i}`).toBeLessThan(1e-6);
  });

  it('fine-tune the LayerNorms and classifier of a tiny BERT through ORT\'s runtime', async () => {
    const config: BertConfig = {
      modelType: 'bert', vocabSize: 64, hiddenSize: 16, numHiddenLayers: 2, numAttentionHeads: 2, intermediateSize: 32, hiddenAct: 'gelu',
      hiddenDropoutProb: 0.1, attentionProbsDropoutProb: 0.1, classifierDropout: null, maxPositionEmbeddings: 32, typeVocabSize: 2, layerNormEps: 1e-12, padTokenId: 0,
    };
    const headed = attachHead(buildBert({ config, seed: 3, numLabels: 2 }), { kind: 'classification', numLabels: 2 }, { dropout: 0 });
    const structure = discoverParameters(headed.train);
    const trainable = selectParameters(structure, 'layernorm,classifier').parameters.map((p) => p.name);
    const frozen = structure.parameters.map((p) => p.name).filter((n) => !trainable.includes(n));
    expect(trainable.length).toBe(12);
    const { gradients } = buildBackward(headed.train.graph, { loss: 'loss', wrt: trainable });
    const built = buildOrtTrainingModels(headed.train, { loss: 'loss', trainable, frozen, gradients, evalForward: headed.eval });
    const s = await train(built, trainable, buildAdamWOptimizerModel({ lr: 0.02, beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 0, schedule: { kind: 'constant', warmupSteps: 0, totalSteps: 0 } }));
    expect(s.trainingInputNames).toEqual(['input_ids', 'attention_mask', 'token_type_ids', 'labels']);

    const B = 4, L = 6;
    const ids = BigInt64Array.from({ length: B * L }, (_, i) => BigInt(1 + ((i * 7) % 60)));
    const feeds = {
      input_ids: new s.ort.Tensor('int64', ids, [B, L]),
      attention_mask: new s.ort.Tensor('int64', new BigInt64Array(B * L).fill(1n), [B, L]),
      token_type_ids: new s.ort.Tensor('int64', new BigInt64Array(B * L), [B, L]),
      labels: new s.ort.Tensor('int64', BigInt64Array.from([0n, 1n, 1n, 0n]), [B]),
    };
    const before = (await s.getContiguousParameters(false)).slice();
    const losses: number[] = [];
    for (let i = 0; i < 20; i++) {
      losses.push((await s.runTrainStep(feeds)).loss!.data[0] as number);
      await s.runOptimizerStep();
      await s.lazyResetGrad();
    }
    expect(losses[19]!).toBeLessThan(losses[0]! - 0.05);
    const after = await s.getContiguousParameters(false);
    let offset = 0;
    for (const p of built.parameters) {
      const n = p.data.length;
      expect(after.subarray(offset, offset + n).some((v, i) => v !== before[offset + i]), p.name).toBe(p.trainable);
      offset += n;
    }
    // With dropout off, eval and train forward agree on the trained parameters.
    const evalLoss = (await s.runEvalStep(feeds)).loss!.data[0] as number;
    expect(evalLoss).toBeCloseTo((await s.runTrainStep(feeds)).loss!.data[0] as number, 5);
    await s.release();
  });
});
