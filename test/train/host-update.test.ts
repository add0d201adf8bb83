/**
 * The native backend's in-place optimizer update: against torch.optim (the fixture the update graph
 * is checked against too), and a whole native backend updating in place against the same backend
 * running the train-step graph, step for step.
 */
import { describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CLIP_EPSILON, DEFAULT_ADAMW, type OptimizerConfig } from '../../src/artifacts/native/optimizer.js';
import { readManifest } from '../../src/artifacts/generate.js';
import { hostUpdate, type HostTensor } from '../../src/train/backends/host-update.js';
import { NativeBackend } from '../../src/train/backends/native.js';
import type { TensorMap } from '../../src/train/backends/types.js';
import { makeBatches } from '../../src/data/batching.js';
import { loadTaskSplit } from '../../src/train/data.js';
import { getGlueTask } from '../../src/data/glue-tasks.js';
import { loadTokenizer } from '../../src/data/tokenizer.js';
import { GLUE, ROOT } from '../helpers/paths.js';
import { expectClose } from '../helpers/close.js';
import { tinyArtifacts } from './helpers.js';

const ref = JSON.parse(fs.readFileSync(path.join(ROOT, 'test/fixtures/torch/optimizers.json'), 'utf8'));

describe('host optimizer update', () => {
  for (const [caseName, cfg] of [
    ['adamw', DEFAULT_ADAMW],
    ['adamw-nodecay', { ...DEFAULT_ADAMW, weightDecay: 0 }],
    ['sgd', { ...DEFAULT_ADAMW, name: 'sgd', weightDecay: 0 }],
  ] as const) {
    it(`${caseName} matches torch.optim over ${ref.grads.length} steps`, () => {
      const want = ref.cases.find((c: { name: string }) => c.name === caseName).trace;
      const n = ref.initial.length;
      const t: HostTensor = { param: Float32Array.from(ref.initial), grad: new Float32Array(n), expAvg: new Float32Array(n), expAvgSq: new Float32Array(n), decay: true };
      for (let s = 0; s < ref.grads.length; s++) {
        t.grad.set(ref.grads[s]);
        hostUpdate([t], cfg as OptimizerConfig, { learningRate: ref.lrs[s], step: s + 1, gradScale: 1 });
        expectClose(t.param, want[s].param, 1e-5);
        if (want[s].exp_avg) {
          expectClose(t.expAvg!, want[s].exp_avg, 1e-5);
          expectClose(t.expAvgSq!, want[s].exp_avg_sq, 1e-4);
        }
      }
    });
  }

  for (const [caseName, cfg] of [
    ['adamw-clip', { ...DEFAULT_ADAMW, maxGradNorm: 1 }],
    ['sgd-clip', { ...DEFAULT_ADAMW, name: 'sgd', weightDecay: 0, maxGradNorm: 1 }],
    ['adamw-clip-masked', { ...DEFAULT_ADAMW, weightDecay: 0, maxGradNorm: 1 }],
  ] as const) {
    it(`${caseName} matches torch.nn.utils.clip_grad_norm_ + torch.optim, the norm taken over two tensors`, () => {
      const clip = ref.clip;
      const want = clip.cases.find((c: { name: string }) => c.name === caseName);
      const tensors: HostTensor[] = clip.initial.map((init: number[], i: number) => ({
        param: Float32Array.from(init), grad: new Float32Array(init.length), expAvg: new Float32Array(init.length), expAvgSq: new Float32Array(init.length),
        decay: true, mask: want.masked && i === 0 ? Float32Array.from(clip.mask) : undefined,
      }));
      for (let s = 0; s < clip.grads.length; s++) {
        tensors.forEach((t, i) => t.grad.set(clip.grads[s][i]));
        hostUpdate(tensors, cfg as OptimizerConfig, { learningRate: ref.lrs[s], step: s + 1, gradScale: 1 });
        tensors.forEach((t, i) => expectClose(t.param, want.trace[s].params[i], 1e-5));
      }
    });
  }

  it('masked entries keep their exact values, with decay on', () => {
    const n = ref.initial.length;
    const mask = Float32Array.from({ length: n }, (_, i) => (i % 3 === 0 ? 1 : 0));
    for (const cfg of [DEFAULT_ADAMW, { ...DEFAULT_ADAMW, name: 'sgd' as const }]) {
      const t: HostTensor = { param: Float32Array.from(ref.initial), grad: new Float32Array(n), expAvg: new Float32Array(n), expAvgSq: new Float32Array(n), decay: true, mask };
      for (let s = 0; s < ref.grads.length; s++) {
        t.grad.set(ref.grads[s]);
        hostUpdate([t], cfg, { learningRate: ref.lrs[s], step: s + 1, gradScale: 1 });
      }
      for (let i = 0; i < n; i++) {
        if (mask[i]) expect(t.param[i]).not.toBe(Math.fround(ref.initial[i]));
        else expect(t.param[i]).toBe(Math.fround(ref.initial[i]));
      }
    }
  });
});

describe('host optimizer update: the SIMD kernel over chunks', () => {
  /** The update one element at a time in float64, torch.optim's formulas unfused. */
  function scalarReference(tensors: HostTensor[], cfg: OptimizerConfig, lr: number, step: number): void {
    let scale = 1;
    if (cfg.maxGradNorm) {
      let sumSq = 0;
      for (const t of tensors) t.grad.forEach((g, i) => { sumSq += g * g * (t.mask ? t.mask[i]! : 1); });
      scale = Math.min(cfg.maxGradNorm / (Math.sqrt(sumSq) + CLIP_EPSILON), 1);
    }
    for (const t of tensors) {
      const df = t.decay ? 1 - lr * cfg.weightDecay : 1;
      for (let i = 0; i < t.param.length; i++) {
        if (t.mask && t.mask[i] === 0) continue;
        const g = t.grad[i]! * scale;
        if (cfg.name === 'sgd') { t.param[i] = t.param[i]! * df - lr * g; continue; }
        const m = (t.expAvg![i] = cfg.beta1 * t.expAvg![i]! + (1 - cfg.beta1) * g);
        const v = (t.expAvgSq![i] = cfg.beta2 * t.expAvgSq![i]! + (1 - cfg.beta2) * g * g);
        // The bias corrections as float32 constants, as the graph and the kernel take them (1 − β2
        // rounds to 1e-5 relative in float32: more than the kernel's own arithmetic moves).
        const bc = (b: number) => Math.fround(1 - Math.fround(b ** step));
        const mHat = m / bc(cfg.beta1), vHat = v / bc(cfg.beta2);
        t.param[i] = t.param[i]! * df - (lr * mHat) / (Math.sqrt(vHat) + cfg.epsilon);
      }
    }
  }

  // Sizes across the kernel's 16384-float chunks and its 4-lane vectors: a partial last chunk, a
  // last vector with 1 and 3 live lanes, and a tensor smaller than one vector.
  const sizes = [16384 * 2 + 5, 16384, 7, 3, 16384 + 1];
  const seeded = (n: number, seed: number, f: (u: number) => number) => {
    let x = seed;
    return Float32Array.from({ length: n }, () => { x = (Math.imul(x, 1103515245) + 12345) >>> 0; return f(x / 2 ** 32); });
  };
  for (const [label, cfg] of [
    ['AdamW with clipping', { ...DEFAULT_ADAMW, maxGradNorm: 0.5 }],
    ['SGD with clipping', { ...DEFAULT_ADAMW, name: 'sgd', maxGradNorm: 0.5 }],
  ] as const) {
    it(`${label}, masked and unmasked tensors of ${sizes.join(', ')} entries, equals a float64 scalar loop`, () => {
      const make = (): HostTensor[] => sizes.map((n, j) => ({
        param: seeded(n, 11 + j, (u) => u - 0.5), grad: new Float32Array(n), expAvg: new Float32Array(n), expAvgSq: new Float32Array(n),
        decay: j !== 1, mask: j % 2 === 0 ? seeded(n, 97 + j, (u) => (u < 0.3 ? 1 : 0)) : undefined,
      }));
      const lr = 1e-2;
      const [ours, want, start] = [make(), make(), make()];
      const steps = 3;
      for (let step = 1; step <= steps; step++) {
        sizes.forEach((n, j) => {
          const g = seeded(n, 1000 * step + j, (u) => (u - 0.5) * 0.2);
          ours[j]!.grad.set(g);
          want[j]!.grad.set(g);
        });
        hostUpdate(ours, cfg as OptimizerConfig, { learningRate: lr, step, gradScale: 1 });
        scalarReference(want, cfg as OptimizerConfig, lr, step);
      }
      ours.forEach((t, j) => {
        // Float32 arithmetic rounds p·df and p·df − update each step (the reference only stores):
        // within two ulps of the value and a millionth of the step size, per step taken.
        t.param.forEach((x, i) => { if (Math.abs(x - want[j]!.param[i]!) > steps * (2 * Math.abs(x) * 2 ** -23 + 1e-6 * lr)) expect.fail(`tensor ${j} entry ${i}: ${x} vs ${want[j]!.param[i]}`); });
        if (cfg.name === 'adamw') expectClose(t.expAvgSq!, Array.from(want[j]!.expAvgSq!), 1e-6);
        // Masked-out entries are bit-identical to their start; masked-in ones moved.
        if (t.mask) t.mask.forEach((k, i) => { if (k === 0 && t.param[i] !== start[j]!.param[i]) expect.fail(`entry ${i} of tensor ${j} is masked out but moved`); });
      });
    });
  }

  it('the committed kernel bytes are the assembly of their .wat sources', async () => {
    const { WASM_MODULES, generatedSource } = await import('../../scripts/build-wasm.js');
    for (const mod of WASM_MODULES) {
      expect(fs.readFileSync(path.join(ROOT, mod.out), 'utf8'), `${mod.out} is stale: run npm run build:wasm`).toBe(await generatedSource(mod));
    }
  });
});

describe('native backend: in-place updates equal the train-step graph', () => {
  const copy = (m: TensorMap) => new Map([...m].map(([k, v]) => [k, Float32Array.from(v)]));
  const maxDiff = (a: TensorMap, b: TensorMap) => Math.max(...[...a].map(([k, v]) => v.reduce((d, x, i) => Math.max(d, Math.abs(x - b.get(k)![i]!)), 0)));

  for (const [label, spec, optimizer, gradAccum] of [
    ['attention, AdamW with clipping, 2 micro-batches an update', 'attention', 'adamw', 2],
    // SGD: AdamW divides by √v + ε, which turns the last-bit differences of a gradient that nearly
    // cancels (a row looked up by several tokens) into differences far above float rounding.
    ['the embeddings (the word embeddings as rows), SGD with clipping, 2 micro-batches an update', 'embeddings', 'sgd', 2],
    ['the top 25% of the bias entries (masked), SGD', 'bias:top=25%', 'sgd', 1],
    ['the top 25% of the bias entries (masked), AdamW', 'bias:top=25%', 'adamw', 1],
  ] as const) {
    it(label, async () => {
      const artifacts = tinyArtifacts({ task: 'sst2', train: spec, optimizer, maxGradNorm: 0.5 });
      const manifest = readManifest(artifacts);
      if (spec.includes('top=')) expect(manifest.parameters.some((p) => p.mask !== null)).toBe(true);
      if (spec === 'embeddings') expect(manifest.native!.gradient.outputs.map((o) => o.role)).toContain('grad_rows');
      const ds = loadTaskSplit(getGlueTask('sst2'), 'train', { dir: GLUE, tokenizer: loadTokenizer(path.join(artifacts, 'vocab.txt')), maxLength: 64, cacheDir: false, limit: 48 });
      const base = { artifactsDir: artifacts, manifest, device: 'cpu' as const, threads: 1 };
      const host = await NativeBackend.create({ ...base, update: 'host' });
      const graph = await NativeBackend.create({ ...base, update: 'graph' });
      const initial = copy(host.getParameters());
      const loader = makeBatches(ds, { batchSize: 8, shuffle: true, seed: 3 });
      for (let step = 1; step <= 3; step++) {
        for (let k = 0; k < gradAccum - 1; k++) {
          const b = loader.next();
          await host.accumulate(b);
          await graph.accumulate(b);
        }
        const b = loader.next();
        const control = { learningRate: 5e-3, step, gradScale: 1 / gradAccum };
        const [lh, lg] = [await host.trainStep(b, control), await graph.trainStep(b, control)];
        expect(lh.loss).toBeCloseTo(lg.loss, 5);
      }
      expect(maxDiff(host.getParameters(), graph.getParameters())).toBeLessThan(1e-6);
      expect(maxDiff(host.getParameters(), initial)).toBeGreaterThan(1e-4);
      if (optimizer === 'adamw') expect(maxDiff(host.getOptimizerState(), graph.getOptimizerState())).toBeLessThan(1e-6);
      await host.release();
      await graph.release();
    });
  }
});
