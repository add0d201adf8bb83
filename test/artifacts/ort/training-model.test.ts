import { describe, expect, it } from 'vitest';
import * as ort from 'onnxruntime-node';
import { encodeCheckpoint, readCheckpoint } from '../../../src/artifacts/ort/checkpoint.js';
import { buildAdamWOptimizerModel } from '../../../src/artifacts/ort/optimizer.js';
import { buildOrtCheckpoint, buildOrtTrainingModels, gradBufferName, gradOutName } from '../../../src/artifacts/ort/training-model.js';
import { createTrainingSession, OrtTrainingSession } from '../../../src/runtime/ort-training.js';
import { DataType } from '../../../src/onnx/dtype.js';
import { encodeModel } from '../../../src/onnx/io.js';
import { tensorFloat32 } from '../../../src/onnx/tensor.js';
import { linearLossModel, tinyBatch, tinyMlp } from './tiny-models.js';

const BATCH = 16;
const adamw = (lr: number) =>
  encodeModel(buildAdamWOptimizerModel({ lr, beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 0, schedule: { kind: 'constant', warmupSteps: 0, totalSteps: 0 } }));

async function sessionFor(built: ReturnType<typeof buildOrtTrainingModels>, lr = 0.05): Promise<OrtTrainingSession> {
  const trainable = new Set(built.parameters.filter((p) => p.trainable).map((p) => p.name));
  return createTrainingSession({
    checkpoint: encodeCheckpoint(buildOrtCheckpoint(built.parameters, trainable)),
    trainModel: encodeModel(built.training),
    evalModel: encodeModel(built.eval),
    optimizerModel: adamw(lr),
  });
}

function feedsFor(s: OrtTrainingSession, batch: { x: Float32Array; labels: BigInt64Array }) {
  return { x: new s.ort.Tensor('float32', batch.x, [batch.labels.length, 4]), labels: new s.ort.Tensor('int64', batch.labels, [batch.labels.length]) };
}

describe('ORT training and eval models', () => {
  it('have exactly the layout ORT\'s runtime expects', () => {
    const mlp = tinyMlp(BATCH);
    const built = buildOrtTrainingModels(mlp.model, {
      loss: mlp.loss, trainable: ['fc2.weight', 'fc1.bias', 'fc2.bias'], frozen: ['fc1.weight'], gradients: mlp.gradients, lossSeed: mlp.seed,
    });
    const t = built.training.graph;
    const params = ['fc2.weight', 'fc1.bias', 'fc2.bias', 'fc1.weight'];
    expect(t.inputs.map((i) => i.name)).toEqual([
      'x', 'labels', ...params,
      'fc2.weight_grad.accumulation.buffer', 'fc1.bias_grad.accumulation.buffer', 'fc2.bias_grad.accumulation.buffer',
      'lazy_reset_grad',
    ]);
    expect(t.inputs.find((i) => i.name === 'lazy_reset_grad')).toMatchObject({ elemType: DataType.BOOL, shape: [1] });
    expect(t.inputs.find((i) => i.name === gradBufferName('fc2.weight'))).toMatchObject({ elemType: DataType.FLOAT, shape: [8, 3] });
    expect(t.outputs.map((o) => o.name)).toEqual(['loss', 'logits', ...['fc2.weight', 'fc1.bias', 'fc2.bias'].map(gradOutName)]);
    expect(t.outputs.at(-1)).toMatchObject({ elemType: DataType.BOOL, shape: [1] });
    for (const p of params) expect(t.initializers.has(p), p).toBe(false);
    const acc = t.nodes.filter((n) => n.opType === 'InPlaceAccumulatorV2');
    expect(acc.map((n) => [n.domain, n.inputs[0], n.inputs[2], n.outputs[0]])).toEqual(
      ['fc2.weight', 'fc1.bias', 'fc2.bias'].map((p) => ['com.microsoft', gradBufferName(p), 'lazy_reset_grad', gradOutName(p)]),
    );
    expect(acc[0]!.inputs[1]).toBe(mlp.gradients.get('fc2.weight'));
    // The seed has ORT's name and value; the frozen weight's gradient MatMul is gone.
    expect(Array.from(tensorFloat32(t.initializers.get('loss_grad')!))).toEqual([1]);
    expect(t.initializers.has(mlp.seed)).toBe(false);
    expect(t.nodes.some((n) => n.outputs.includes(mlp.gradients.get('fc1.weight')!))).toBe(false);
    expect(built.training.opsetImports).toEqual([{ domain: '', version: 17 }, { domain: 'com.microsoft', version: 1 }]);

    const e = built.eval.graph;
    expect(e.inputs.map((i) => i.name)).toEqual(['x', 'labels', ...params]);
    expect(e.outputs.map((o) => o.name)).toEqual(['loss', 'logits']);
    expect(e.nodes.map((n) => n.opType)).toEqual(['MatMul', 'Add', 'Relu', 'MatMul', 'Add', 'SoftmaxCrossEntropyLoss']);
    expect(e.nodes.every((n) => n.domain === '')).toBe(true);
    expect(built.eval.opsetImports).toEqual([{ domain: '', version: 17 }]);
    expect(built.parameters.map((p) => [p.name, p.trainable, p.dims])).toEqual([
      ['fc2.weight', true, [8, 3]], ['fc1.bias', true, [8]], ['fc2.bias', true, [3]], ['fc1.weight', false, [4, 8]],
    ]);
    // The source model is untouched.
    expect(mlp.model.graph.initializers.has('fc1.weight')).toBe(true);
  });

  it('the eval model runs on stock onnxruntime-node and matches the forward model', async () => {
    const mlp = tinyMlp(BATCH);
    const built = buildOrtTrainingModels(mlp.model, { loss: 'loss', trainable: ['fc2.bias'], frozen: ['fc1.weight', 'fc1.bias', 'fc2.weight'], gradients: mlp.gradients });
    const batch = tinyBatch(BATCH, 7);
    const feeds: Record<string, ort.Tensor> = {
      x: new ort.Tensor('float32', batch.x, [BATCH, 4]),
      labels: new ort.Tensor('int64', batch.labels, [BATCH]),
    };
    const forward = await ort.InferenceSession.create(encodeModel(mlp.model));
    const want = await forward.run(feeds);
    const evalSession = await ort.InferenceSession.create(encodeModel(built.eval));
    for (const p of built.parameters) feeds[p.name] = new ort.Tensor('float32', p.data, p.dims);
    const got = await evalSession.run(feeds);
    expect(got.loss!.data).toEqual(want.loss!.data);
    expect(got.logits!.data).toEqual(want.logits!.data);
  });

  it('trains through ORT\'s TrainingSession: the loss falls and only trainable parameters move', async () => {
    const mlp = tinyMlp(BATCH);
    const trainable = ['fc1.bias', 'fc2.weight', 'fc2.bias'];
    const built = buildOrtTrainingModels(mlp.model, { loss: 'loss', trainable, frozen: ['fc1.weight'], gradients: mlp.gradients, lossSeed: mlp.seed });
    const s = await sessionFor(built);
    expect(s.trainingInputNames).toEqual(['x', 'labels']);
    expect(s.trainingOutputNames).toEqual(['loss', 'logits']);
    expect(await s.getParametersSize(true)).toBe(8 + 24 + 3);
    expect(await s.getParametersSize(false)).toBe(8 + 24 + 3 + 32);
    const before = (await s.getContiguousParameters(false)).slice();
    // Layout: the checkpoint's order, trainable then frozen.
    expect(Array.from(before)).toEqual(built.parameters.flatMap((p) => Array.from(p.data)));

    const batch = feedsFor(s, tinyBatch(BATCH, 11));
    const losses: number[] = [];
    for (let step = 0; step < 30; step++) {
      losses.push((await s.runTrainStep(batch)).loss!.data[0] as number);
      await s.runOptimizerStep();
      await s.lazyResetGrad();
    }
    expect(losses[29]!).toBeLessThan(losses[0]! * 0.5);
    for (let i = 1; i < 30; i++) expect(losses[i]!).toBeLessThan(losses[i - 1]! + 1e-3);

    const after = await s.getContiguousParameters(false);
    let offset = 0;
    for (const p of built.parameters) {
      const n = p.data.length;
      const moved = after.subarray(offset, offset + n).some((v, i) => v !== before[offset + i]);
      expect(moved, p.name).toBe(p.trainable);
      offset += n;
    }
    const trainableOnly = await s.getContiguousParameters(true);
    expect(Array.from(trainableOnly)).toEqual(Array.from(after.subarray(0, 35)));

    // Eval sees the trained parameters.
    const evalLoss = (await s.runEvalStep(batch)).loss!.data[0] as number;
    expect(evalLoss).toBeCloseTo((await s.runTrainStep(batch)).loss!.data[0] as number, 6);

    // Parameters can be written back, e.g. to resume, and are then what the model uses.
    await s.loadParametersBuffer(before.subarray(0, 35), true);
    expect(Array.from(await s.getContiguousParameters(true))).toEqual(Array.from(before.subarray(0, 35)));
    expect((await s.runEvalStep(batch)).loss!.data[0]).toBeCloseTo(losses[0]!, 6);
    await s.release();
  });

  it('getContiguousParameters follows the training model\'s input order, not the checkpoint\'s', async () => {
    // ORT's own reference artifacts differ here (checkpoint sorted by name, model in graph order);
    // ours keep both in one order. This pins down which order the runtime reports.
    const lin = linearLossModel();
    const built = buildOrtTrainingModels(lin.model, { loss: 'loss', trainable: ['w', 'b'], gradients: lin.gradients });
    const reversed = buildOrtCheckpoint([...built.parameters].reverse(), new Set(['w', 'b']));
    expect(reversed.trainable.map((t) => t.name)).toEqual(['b', 'w']);
    const s = await createTrainingSession({ checkpoint: encodeCheckpoint(reversed), trainModel: encodeModel(built.training) });
    const flat = await s.getContiguousParameters(true);
    expect(Array.from(flat)).toEqual([...Array.from(built.parameters[0]!.data), ...Array.from(built.parameters[1]!.data)]);
    await s.release();
  });

  it('masked parameters move only where the mask is 1', async () => {
    const mlp = tinyMlp(BATCH);
    const mask = new Uint8Array(24).map((_, i) => (i % 3 === 0 ? 1 : 0));
    const built = buildOrtTrainingModels(mlp.model, {
      loss: 'loss', trainable: ['fc2.weight'], frozen: ['fc1.weight', 'fc1.bias', 'fc2.bias'], gradients: mlp.gradients, masks: new Map([['fc2.weight', mask]]),
    });
    const s = await sessionFor(built);
    const before = (await s.getContiguousParameters(true)).slice();
    const batch = feedsFor(s, tinyBatch(BATCH, 3));
    for (let i = 0; i < 5; i++) {
      await s.runTrainStep(batch);
      await s.runOptimizerStep();
      await s.lazyResetGrad();
    }
    const after = await s.getContiguousParameters(true);
    for (let i = 0; i < 24; i++) expect(after[i] !== before[i], `entry ${i}`).toBe(mask[i] === 1);
    await s.release();
  });

  it('refuses names and inputs the runtime would misread', () => {
    const mlp = tinyMlp(BATCH);
    const base = { loss: 'loss', gradients: mlp.gradients };
    expect(() => buildOrtTrainingModels(mlp.model, { ...base, trainable: [] })).toThrow(/no trainable parameters/);
    expect(() => buildOrtTrainingModels(mlp.model, { ...base, trainable: ['nope'] })).toThrow(/parameter 'nope' is neither an initializer nor an input of the training model/);
    expect(() => buildOrtTrainingModels(mlp.model, { ...base, trainable: ['fc1.bias'], frozen: ['fc1.bias'] })).toThrow(/'fc1.bias' is listed twice/);
    expect(() => buildOrtTrainingModels(mlp.model, { ...base, trainable: ['fc1.bias'], gradients: new Map() })).toThrow(/no gradient for trainable parameter 'fc1.bias'/);
    expect(() => buildOrtTrainingModels(mlp.model, { ...base, trainable: ['fc1.bias'], gradients: new Map([['fc1.bias', 'ghost']]) })).toThrow(/gradient 'ghost' of parameter 'fc1.bias' is not computed/);
    expect(() => buildOrtTrainingModels(mlp.model, { ...base, trainable: ['fc1.bias'], masks: new Map([['fc1.bias', new Uint8Array(3)]]) })).toThrow(/mask of 'fc1.bias' has 3 entries, the parameter has 8/);
    expect(() => buildOrtTrainingModels(mlp.model, { ...base, trainable: ['fc1.bias'], loss: 'nothing' })).toThrow(/loss 'nothing' is not computed/);

    // A parameter that is already a graph input needs its value, of the declared shape.
    const exposed = tinyMlp(BATCH);
    const bias = tensorFloat32(exposed.model.graph.initializers.get('fc1.bias')!).slice();
    exposed.model.graph.initializers.delete('fc1.bias');
    exposed.model.graph.inputs.push({ name: 'fc1.bias', elemType: DataType.FLOAT, shape: [8] });
    const ex = { ...base, trainable: ['fc1.bias'], gradients: exposed.gradients };
    expect(() => buildOrtTrainingModels(exposed.model, ex)).toThrow(/parameter 'fc1.bias' is an input of the training model; give its value/);
    expect(() => buildOrtTrainingModels(exposed.model, { ...ex, values: new Map([['fc1.bias', { dims: [2, 4], data: bias }]]) })).toThrow(
      /'fc1.bias' is declared \[8\] in the training model, its value is \[2, 4\]/,
    );
    const fromInput = buildOrtTrainingModels(exposed.model, { ...ex, values: new Map([['fc1.bias', { dims: [8], data: bias }]]) });
    expect(fromInput.parameters.map((p) => [p.name, Array.from(p.data)])).toEqual([['fc1.bias', Array.from(bias)]]);
    expect(fromInput.training.graph.inputs.map((i) => i.name)).toEqual(['x', 'labels', 'fc1.bias', 'fc1.bias_grad.accumulation.buffer', 'lazy_reset_grad']);
    expect(fromInput.eval.graph.inputs.map((i) => i.name)).toEqual(['x', 'labels', 'fc1.bias']);

    const renamed = tinyMlp(BATCH);
    renamed.model.graph.inputs[0]!.name = 'x_grad';
    renamed.model.graph.replaceUses('x', 'x_grad');
    expect(() => buildOrtTrainingModels(renamed.model, { ...base, trainable: ['fc1.bias'], gradients: renamed.gradients })).toThrow(/user input 'x_grad' ends in '_grad', which ORT's runtime takes for a gradient/);

    const int = tinyMlp(BATCH);
    int.model.graph.initializers.set('fc1.bias', { ...int.model.graph.initializers.get('fc1.bias')!, dataType: DataType.INT32 });
    expect(() => buildOrtTrainingModels(int.model, { ...base, trainable: ['fc1.bias'], gradients: int.gradients })).toThrow(/'fc1.bias' is INT32; ORT's training runtime handles float32 parameters only/);
  });

  it('writes optimizer state that the runtime resumes from', () => {
    const lin = linearLossModel();
    const built = buildOrtTrainingModels(lin.model, { loss: 'loss', trainable: ['w'], frozen: ['b'], gradients: lin.gradients });
    const m = new Float32Array(6).fill(0.5);
    const v = new Float32Array(6).fill(2);
    const c = readCheckpoint(encodeCheckpoint(buildOrtCheckpoint(built.parameters, new Set(['w']), { optimizer: { step: 7, moments: new Map([['w', [m, v]]]) } })));
    expect(c.trainable.map((t) => t.name)).toEqual(['w']);
    expect(c.frozen.map((t) => t.name)).toEqual(['b']);
    expect(c.optimizerGroups.map((g) => [g.name, g.step, g.states.map((s) => [s.param, s.momentums.map((t) => t.name)])])).toEqual([
      ['group0', 7, [['w', ['momentum0', 'momentum1']]]],
    ]);
    expect(() => buildOrtCheckpoint(built.parameters, new Set(['w']), { optimizer: { step: 1, moments: new Map([['b', [m, v]]]) } })).toThrow(/moments given for 'b', which is not trainable/);
    expect(() => buildOrtCheckpoint(built.parameters, new Set(['q']))).toThrow(/trainable parameter 'q' has no value/);
  });
});
