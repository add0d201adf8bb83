import { describe, expect, it } from 'vitest';
import * as ort from 'onnxruntime-node';
import { encodeCheckpoint } from '../../../src/artifacts/ort/checkpoint.js';
import {
  LrSchedule, OPTIMIZER_INPUTS, buildAdamWOptimizerModel, buildOrtOptimizerModel, buildSgdOptimizerModel, resolveOrtWeightDecay, scheduleFactor, scheduledLearningRate,
} from '../../../src/artifacts/ort/optimizer.js';
import { OrtOptimizerState, buildOrtCheckpoint, buildOrtTrainingModels } from '../../../src/artifacts/ort/training-model.js';
import { createTrainingSession } from '../../../src/runtime/ort-training.js';
import { DataType } from '../../../src/onnx/dtype.js';
import { Graph, Model, cloneModel } from '../../../src/onnx/graph.js';
import { decodeModel, encodeModel, newModel } from '../../../src/onnx/io.js';
import { linearLossModel } from './tiny-models.js';

const X = new Float32Array([1.5, -0.5, 0.25, -2, 0.75, 3]);
const W0 = [0.5, -1, 2, 0.25, -0.75, 1.5];
const B0 = [0.1, -0.2, 0.3];
const F = [0.5, -2, 0.125]; // frozen; also db

/** The linear-loss artifacts: dW = X and db = F exactly, so updates can be computed by hand. */
async function linearSession(optimizerModel: Model, optimizer?: OrtOptimizerState) {
  const lin = linearLossModel();
  const built = buildOrtTrainingModels(lin.model, { loss: 'loss', trainable: ['w', 'b'], frozen: ['f'], gradients: lin.gradients, lossSeed: lin.seed });
  const s = await createTrainingSession({
    checkpoint: encodeCheckpoint(buildOrtCheckpoint(built.parameters, new Set(['w', 'b']), { optimizer })),
    trainModel: encodeModel(built.training),
    optimizerModel: encodeModel(optimizerModel),
  });
  const feeds = { x: new s.ort.Tensor('float32', X, [2, 3]) };
  return { s, feeds };
}

/** torch.optim.AdamW in float64: decay, moments, bias-corrected step with t = step. */
class ReferenceAdamW {
  m: number[];
  v: number[];
  constructor(public p: number[], private o: { lr: number; beta1: number; beta2: number; epsilon: number; weightDecay: number; schedule: LrSchedule }, m?: number[], v?: number[]) {
    this.m = m ?? p.map(() => 0);
    this.v = v ?? p.map(() => 0);
  }
  step(t: number, g: number[]): void {
    const { beta1, beta2, epsilon, weightDecay } = this.o;
    const lr = scheduledLearningRate(this.o.lr, this.o.schedule, t);
    for (let i = 0; i < this.p.length; i++) {
      this.p[i]! *= 1 - lr * weightDecay;
      this.m[i] = beta1 * this.m[i]! + (1 - beta1) * g[i]!;
      this.v[i] = beta2 * this.v[i]! + (1 - beta2) * g[i]! * g[i]!;
      this.p[i]! -= (lr / (1 - beta1 ** t)) * this.m[i]! / (Math.sqrt(this.v[i]! / (1 - beta2 ** t)) + epsilon);
    }
  }
}

function expectClose(got: ArrayLike<number>, want: number[], rel = 2e-6): void {
  expect(got.length).toBe(want.length);
  for (let i = 0; i < want.length; i++) expect(Math.abs(got[i]! - want[i]!), `entry ${i}: ${got[i]} vs ${want[i]}`).toBeLessThanOrEqual(rel * Math.max(1, Math.abs(want[i]!)));
}

/** The schedule part of an optimizer graph (everything but the AdamWOptimizer node), runnable on stock ORT. */
function scheduleOnly(m: Model): Model {
  const copy = cloneModel(m);
  const g = copy.graph;
  const adam = g.nodes.find((n) => n.opType === 'AdamWOptimizer')!;
  g.removeNodes([adam]);
  g.inputs = g.inputs.filter((i) => i.name === 'step');
  g.outputs = [{ name: adam.inputs[0]!, elemType: DataType.FLOAT, shape: [1] }];
  copy.opsetImports = copy.opsetImports.filter((o) => o.domain === '');
  return copy;
}

describe('ORT optimizer graphs', () => {
  it('have the exact input contract and one AdamWOptimizer node, and survive save/load', () => {
    const m = decodeModel(encodeModel(buildAdamWOptimizerModel({ lr: 2e-5, beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 0.01, schedule: { kind: 'linear', warmupSteps: 10, totalSteps: 100 } })));
    expect(m.graph.inputs.map((i) => [i.name, i.elemType, i.sequence ?? false, i.shape ?? null])).toEqual([
      ['learning_rate', DataType.FLOAT, false, [1]], ['step', DataType.INT64, false, [1]],
      ...OPTIMIZER_INPUTS.slice(2).map((n) => [n, DataType.FLOAT, true, null]),
    ]);
    expect(m.graph.outputs.map((o) => [o.name, o.elemType, o.shape])).toEqual([['updated_flag', DataType.BOOL, [1]]]);
    const adam = m.graph.nodes.filter((n) => n.domain === 'com.microsoft');
    expect(adam.map((n) => n.opType)).toEqual(['AdamWOptimizer']);
    expect(adam[0]!.inputs.slice(1)).toEqual(['step', 'params', 'gradients', 'first_order_moments', 'second_order_moments']);
    expect(Object.fromEntries(Object.entries(adam[0]!.attrs).map(([k, a]) => [k, a.value]))).toEqual({
      alpha: Math.fround(0.9), beta: Math.fround(0.999), epsilon: Math.fround(1e-8), weight_decay: Math.fround(0.01), adam_mode: 0, correct_bias: 1,
    });
    // The runtime's learning_rate (always 0.001 from JS) is not read.
    expect(m.graph.consumers('learning_rate')).toEqual([]);
  });

  it('compute the scheduled rate bit-exactly as scheduledLearningRate does', async () => {
    const cases: [LrSchedule, number][] = [
      [{ kind: 'linear', warmupSteps: 10, totalSteps: 100 }, 2e-5],
      [{ kind: 'linear', warmupSteps: 0, totalSteps: 7 }, 0.1],
      [{ kind: 'constant', warmupSteps: 3, totalSteps: 0 }, 3e-4],
      [{ kind: 'constant', warmupSteps: 0, totalSteps: 0 }, 1e-3],
    ];
    for (const [schedule, lr] of cases) {
      const session = await ort.InferenceSession.create(encodeModel(scheduleOnly(buildAdamWOptimizerModel({ lr, beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 0, schedule }))));
      for (const step of [1, 2, 3, 4, 5, 9, 10, 11, 12, 50, 99, 100, 101, 150]) {
        const out = await session.run({ step: new ort.Tensor('int64', BigInt64Array.from([BigInt(step)]), [1]) });
        expect((out[session.outputNames[0]!]!.data as Float32Array)[0], `${schedule.kind}/${schedule.warmupSteps}/${schedule.totalSteps} step ${step}`).toBe(scheduledLearningRate(lr, schedule, step));
      }
    }
    // Hugging Face's shapes: warmup from 0, linear decay to 0, never negative.
    const s: LrSchedule = { kind: 'linear', warmupSteps: 4, totalSteps: 12 };
    expect([1, 2, 3, 4, 5, 9, 13, 14].map((t) => scheduleFactor(s, t))).toEqual([0, 0.25, 0.5, 0.75, 1, 0.5, 0, 0]);
    expect([1, 2, 3, 4, 100].map((t) => scheduleFactor({ kind: 'constant', warmupSteps: 2, totalSteps: 0 }, t))).toEqual([0, 0.5, 1, 1, 1]);
  });

  it('AdamW in the runtime matches torch.optim.AdamW, step by step (step starts at 1, gradients accumulate)', async () => {
    const o = { lr: 0.05, beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 0.1, schedule: { kind: 'linear', warmupSteps: 2, totalSteps: 10 } as LrSchedule };
    const { s, feeds } = await linearSession(buildAdamWOptimizerModel(o));
    const ref = new ReferenceAdamW([...W0, ...B0], o);
    const grad = (k: number) => [...Array.from(X, (x) => k * x), ...F.map((f) => k * f)];
    // Three plain steps, then one over two accumulated batches (gradient 2·X), then one more after the reset.
    const plan = [1, 1, 1, 2, 1];
    for (const [i, batches] of plan.entries()) {
      for (let b = 0; b < batches; b++) await s.runTrainStep(feeds);
      await s.runOptimizerStep();
      await s.lazyResetGrad();
      ref.step(i + 1, grad(batches));
      expectClose(await s.getContiguousParameters(true), ref.p);
    }
    // The frozen parameter did not move.
    expect(Array.from(await s.getContiguousParameters(false)).slice(9)).toEqual(F);
    await s.release();
  });

  it('resumes from a checkpoint\'s step and moments', async () => {
    const o = { lr: 0.01, beta1: 0.8, beta2: 0.99, epsilon: 1e-6, weightDecay: 0, schedule: { kind: 'linear', warmupSteps: 4, totalSteps: 20 } as LrSchedule };
    const m = [0.3, -0.1, 0.2, 0.05, -0.4, 0.6];
    const v = [0.5, 0.1, 0.2, 0.3, 0.9, 1.2];
    const { s, feeds } = await linearSession(buildAdamWOptimizerModel(o), {
      step: 6,
      moments: new Map([['w', [Float32Array.from(m), Float32Array.from(v)]]]), // 'b' starts at zero
    });
    const ref = new ReferenceAdamW([...W0, ...B0], o, [...m, 0, 0, 0], [...v, 0, 0, 0]);
    for (let t = 7; t <= 9; t++) {
      await s.runTrainStep(feeds);
      await s.runOptimizerStep();
      await s.lazyResetGrad();
      ref.step(t, [...X, ...F]);
      expectClose(await s.getContiguousParameters(true), ref.p);
    }
    await s.release();
  });

  it('SGD through AdamWOptimizer is float32 SGD, bit for bit', async () => {
    for (const weightDecay of [0, 0.25]) {
      const schedule: LrSchedule = { kind: 'linear', warmupSteps: 1, totalSteps: 6 };
      const { s, feeds } = await linearSession(buildSgdOptimizerModel({ lr: 0.1, weightDecay, schedule }));
      const f = Math.fround;
      const p = [...W0, ...B0].map(f);
      const g = [...X, ...F].map(f);
      for (let t = 1; t <= 5; t++) {
        await s.runTrainStep(feeds);
        await s.runOptimizerStep();
        await s.lazyResetGrad();
        const lr = scheduledLearningRate(0.1, schedule, t);
        for (let i = 0; i < p.length; i++) {
          const decayed = f(p[i]! - f(f(p[i]! * lr) * f(weightDecay)));
          p[i] = f(decayed - f(lr * g[i]!));
        }
        expect(Array.from(await s.getContiguousParameters(true)), `wd ${weightDecay} step ${t}`).toEqual(p);
      }
      await s.release();
    }
  });

  it('clip the global gradient norm before the update (InplaceClipGradNorm), as torch.nn.utils.clip_grad_norm_ does', async () => {
    const maxGradNorm = 1;
    const clipped = (g: number[]) => {
      const norm = Math.sqrt(g.reduce((a, v) => a + v * v, 0));
      expect(norm).toBeGreaterThan(4 * maxGradNorm); // clipping engages: ‖[X, F]‖ ≈ 4.5
      const coef = Math.min(1, maxGradNorm / (norm + 1e-6));
      return g.map((v) => v * coef);
    };
    const o = { lr: 0.05, beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 0.1, schedule: { kind: 'linear', warmupSteps: 2, totalSteps: 10 } as LrSchedule, maxGradNorm };
    const m = buildAdamWOptimizerModel(o);
    expect(m.graph.nodes.filter((n) => n.domain === 'com.microsoft').map((n) => n.opType)).toEqual(['InplaceClipGradNorm', 'AdamWOptimizer']);
    const { s, feeds } = await linearSession(m);
    const ref = new ReferenceAdamW([...W0, ...B0], o);
    for (const [i, batches] of [1, 2, 1].entries()) {
      for (let b = 0; b < batches; b++) await s.runTrainStep(feeds);
      await s.runOptimizerStep();
      await s.lazyResetGrad();
      ref.step(i + 1, clipped([...X, ...F].map((v) => v * batches)));
      expectClose(await s.getContiguousParameters(true), ref.p);
    }
    await s.release();

    // SGD makes the step proportional to the gradient, so the coefficient itself shows: p − lr·coef·g.
    const sgd = await linearSession(buildSgdOptimizerModel({ lr: 0.1, weightDecay: 0, schedule: { kind: 'constant', warmupSteps: 0, totalSteps: 0 }, maxGradNorm }));
    await sgd.s.runTrainStep(sgd.feeds);
    await sgd.s.runOptimizerStep();
    const want = clipped([...X, ...F]).map((g, i) => [...W0, ...B0][i]! - 0.1 * g);
    expectClose(await sgd.s.getContiguousParameters(true), want);
    await sgd.s.release();
  });

  it('SGDOptimizerV2 does not load in the 1.19.2 wasm runtime (why SGD goes through AdamWOptimizer)', async () => {
    const g = new Graph();
    g.inputs = [
      { name: 'learning_rate', elemType: DataType.FLOAT, shape: [1] },
      { name: 'step', elemType: DataType.INT64, shape: [1] },
      ...OPTIMIZER_INPUTS.slice(2).map((name) => ({ name, elemType: DataType.FLOAT, sequence: true })),
    ];
    g.outputs = [{ name: 'flag', elemType: DataType.BOOL, shape: [1] }];
    g.addNode({ opType: 'SGDOptimizerV2', domain: 'com.microsoft', inputs: ['learning_rate', 'params', 'gradients', 'first_order_moments'], outputs: ['flag'] });
    await expect(linearSession(newModel(g, 17, [{ domain: 'com.microsoft', version: 1 }]))).rejects.toThrow(/optimizer model was refused/);
  });

  it('validate hyper-parameters', () => {
    const s: LrSchedule = { kind: 'constant', warmupSteps: 0, totalSteps: 0 };
    const ok = { lr: 1e-3, beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 0, schedule: s };
    expect(() => buildAdamWOptimizerModel({ ...ok, lr: 0 })).toThrow(/learning rate must be positive, got 0/);
    expect(() => buildAdamWOptimizerModel({ ...ok, beta2: 1 })).toThrow(/beta2 must be in \[0, 1\), got 1/);
    expect(() => buildAdamWOptimizerModel({ ...ok, epsilon: 0 })).toThrow(/epsilon must be positive/);
    expect(() => buildAdamWOptimizerModel({ ...ok, weightDecay: -1 })).toThrow(/weight decay must be ≥ 0/);
    expect(() => buildAdamWOptimizerModel({ ...ok, schedule: { kind: 'linear', warmupSteps: 0, totalSteps: 0 } })).toThrow(/linear schedule needs total steps ≥ 1/);
    expect(() => buildSgdOptimizerModel({ lr: 1, weightDecay: 0, schedule: { ...s, warmupSteps: 1.5 } })).toThrow(/warmup steps must be an integer/);
  });
});

describe('resolveOrtWeightDecay', () => {
  const w = { name: 'q.weight', decay: true };
  const bias = { name: 'q.bias', decay: false };
  const ln = { name: 'LayerNorm.weight', decay: false };

  it('reproduces Hugging Face\'s rule when all trainable parameters agree', () => {
    expect(resolveOrtWeightDecay([bias, ln], 0.01)).toBe(0);
    expect(resolveOrtWeightDecay([w], 0.01)).toBe(0.01);
    expect(resolveOrtWeightDecay([w, bias], 0)).toBe(0);
  });

  it('refuses what one group-wide decay cannot express, unless told to decay all', () => {
    expect(() => resolveOrtWeightDecay([w, bias, ln], 0.01)).toThrow(
      "--format ort: ORT's optimizer applies one weight decay to all trainable parameters, but 'q.weight' decays and 'q.bias' (bias/LayerNorm) does not (1 vs 2); use --weight-decay 0, decay all of them, or the native format",
    );
    expect(() => resolveOrtWeightDecay([{ ...w, masked: true }], 0.01)).toThrow(/frozen entries of masked parameter 'q.weight'/);
    expect(resolveOrtWeightDecay([w, bias, ln], 0.01, 'decay-all')).toBe(0.01);
  });
});

describe('buildOrtOptimizerModel', () => {
  it('dispatches on the optimizer name the CLI uses', () => {
    const cfg = { lr: 0.01, beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 0.5, schedule: { kind: 'constant', warmupSteps: 0, totalSteps: 0 } as LrSchedule };
    const attrs = (m: Model) => Object.fromEntries(Object.entries(m.graph.nodes.find((n) => n.opType === 'AdamWOptimizer')!.attrs).map(([k, a]) => [k, a.value]));
    expect(attrs(buildOrtOptimizerModel({ name: 'adamw', ...cfg }))).toMatchObject({ alpha: 0.9, epsilon: 1e-8, weight_decay: 0.5 });
    expect(attrs(buildOrtOptimizerModel({ name: 'sgd', ...cfg }))).toMatchObject({ alpha: 0, beta: 0, epsilon: 2 ** 40, weight_decay: 0.5 / 2 ** 40 });
    expect(() => buildOrtOptimizerModel({ name: 'lamb' as 'sgd', ...cfg })).toThrow(/unknown optimizer 'lamb', expected adamw or sgd/);
  });
});
