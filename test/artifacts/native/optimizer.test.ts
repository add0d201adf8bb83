import { describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { appendOptimizerUpdate, DEFAULT_ADAMW, OptimizerConfig } from '../../../src/artifacts/native/optimizer.js';
import { DataType } from '../../../src/onnx/dtype.js';
import { Graph } from '../../../src/onnx/graph.js';
import { encodeModel, newModel } from '../../../src/onnx/io.js';
import { ROOT } from '../../helpers/paths.js';
import { expectClose } from '../../helpers/close.js';

const ref = JSON.parse(fs.readFileSync(path.join(ROOT, 'test/fixtures/torch/optimizers.json'), 'utf8'));

async function updateSession(cfg: OptimizerConfig, mask?: Float32Array) {
  const g = new Graph();
  const shape = ref.shape as number[];
  const f = (name: string, dims: (number | string)[] = shape) => ({ name, elemType: DataType.FLOAT, shape: dims });
  g.inputs = [f('p'), f('p.grad'), f('lr', []), f('step', [])];
  if (cfg.name === 'adamw') g.inputs.push(f('p.exp_avg'), f('p.exp_avg_sq'));
  const [st] = appendOptimizerUpdate(g, [{ name: 'p', grad: 'p.grad', shape, decay: true, mask }], cfg, { lr: 'lr', step: 'step' });
  g.outputs = [f(st!.updated)];
  if (st!.expAvgUpdated) g.outputs.push(f(st!.expAvgUpdated), f(st!.expAvgSqUpdated!));
  return { session: await ort.InferenceSession.create(encodeModel(newModel(g))), st: st! };
}

async function runTrace(cfg: OptimizerConfig, mask?: Float32Array) {
  const { session, st } = await updateSession(cfg, mask);
  const shape = ref.shape as number[];
  let p: Float32Array = Float32Array.from(ref.initial as number[]);
  let m: Float32Array = new Float32Array(p.length);
  let v: Float32Array = new Float32Array(p.length);
  const trace: { param: Float32Array; m: Float32Array; v: Float32Array }[] = [];
  for (let t = 0; t < ref.grads.length; t++) {
    const feeds: Record<string, ort.Tensor> = {
      p: new ort.Tensor('float32', p, shape),
      'p.grad': new ort.Tensor('float32', Float32Array.from(ref.grads[t]), shape),
      lr: new ort.Tensor('float32', new Float32Array([ref.lrs[t]]), []),
      step: new ort.Tensor('float32', new Float32Array([t + 1]), []),
    };
    if (cfg.name === 'adamw') {
      feeds['p.exp_avg'] = new ort.Tensor('float32', m, shape);
      feeds['p.exp_avg_sq'] = new ort.Tensor('float32', v, shape);
    }
    const out = await session.run(feeds);
    p = out[st.updated]!.data as Float32Array;
    if (cfg.name === 'adamw') {
      m = out[st.expAvgUpdated!]!.data as Float32Array;
      v = out[st.expAvgSqUpdated!]!.data as Float32Array;
    }
    trace.push({ param: p, m, v });
  }
  return trace;
}

describe('native optimizer update graph', () => {
  for (const [caseName, cfg] of [
    ['adamw', DEFAULT_ADAMW],
    ['adamw-nodecay', { ...DEFAULT_ADAMW, weightDecay: 0 }],
    ['sgd', { ...DEFAULT_ADAMW, name: 'sgd', weightDecay: 0 }],
  ] as const) {
    it(`${caseName} matches torch.optim over ${ref.grads.length} steps (float32 vs float64 reference)`, async () => {
      const want = ref.cases.find((c: { name: string }) => c.name === caseName).trace;
      const got = await runTrace(cfg as OptimizerConfig);
      got.forEach((s, t) => {
        expectClose(s.param, want[t].param, 1e-5);
        if (want[t].exp_avg) {
          expectClose(s.m, want[t].exp_avg, 1e-5);
          expectClose(s.v, want[t].exp_avg_sq, 1e-4);
        }
      });
    });
  }

  it('masked entries keep their exact values, with decay on', async () => {
    const n = ref.initial.length;
    const mask = Float32Array.from({ length: n }, (_, i) => (i % 3 === 0 ? 1 : 0));
    for (const cfg of [DEFAULT_ADAMW, { ...DEFAULT_ADAMW, name: 'sgd' as const }]) {
      const trace = await runTrace(cfg, mask);
      const last = trace.at(-1)!.param;
      const init = Float32Array.from(ref.initial as number[]);
      for (let i = 0; i < n; i++) {
        if (mask[i]) expect(last[i]).not.toBe(init[i]);
        else expect(last[i]).toBe(init[i]);
      }
    }
  });
});

describe('global gradient-norm clipping (maxGradNorm)', () => {
  const clip = ref.clip as {
    maxNorm: number; shapes: number[][]; initial: number[][]; grads: number[][][]; mask: number[];
    cases: { name: string; masked: boolean; trace: { norm: number; params: number[][] }[] }[];
  };
  const names = ['w', 'b'];

  /** Two parameters updated together, so the norm is taken across both. */
  async function runClipped(cfg: OptimizerConfig, masked: boolean) {
    const g = new Graph();
    const f = (name: string, dims: number[]) => ({ name, elemType: DataType.FLOAT, shape: dims });
    g.inputs = [f('lr', []), f('step', [])];
    names.forEach((n, i) => {
      g.inputs.push(f(n, clip.shapes[i]!), f(`${n}.grad`, clip.shapes[i]!));
      if (cfg.name === 'adamw') g.inputs.push(f(`${n}.exp_avg`, clip.shapes[i]!), f(`${n}.exp_avg_sq`, clip.shapes[i]!));
    });
    const states = appendOptimizerUpdate(g, names.map((n, i) => ({
      name: n, grad: `${n}.grad`, shape: clip.shapes[i]!, decay: true, mask: masked && i === 0 ? Float32Array.from(clip.mask) : undefined,
    })), cfg, { lr: 'lr', step: 'step' });
    g.outputs = states.flatMap((s, i) => [f(s.updated, clip.shapes[i]!), ...(s.expAvgUpdated ? [f(s.expAvgUpdated, clip.shapes[i]!), f(s.expAvgSqUpdated!, clip.shapes[i]!)] : [])]);
    const session = await ort.InferenceSession.create(encodeModel(newModel(g)));
    let state = new Map<string, Float32Array>();
    names.forEach((n, i) => {
      const size = clip.initial[i]!.length;
      state.set(n, Float32Array.from(clip.initial[i]!));
      state.set(`${n}.exp_avg`, new Float32Array(size));
      state.set(`${n}.exp_avg_sq`, new Float32Array(size));
    });
    const trace: Float32Array[][] = [];
    for (let t = 0; t < clip.grads.length; t++) {
      const feeds: Record<string, ort.Tensor> = {
        lr: new ort.Tensor('float32', new Float32Array([ref.lrs[t]]), []),
        step: new ort.Tensor('float32', new Float32Array([t + 1]), []),
      };
      for (const input of g.inputs) {
        if (input.name === 'lr' || input.name === 'step') continue;
        const i = names.indexOf(input.name.split('.')[0]!);
        const data = input.name.endsWith('.grad') ? Float32Array.from(clip.grads[t]![i]!) : state.get(input.name)!;
        feeds[input.name] = new ort.Tensor('float32', data, clip.shapes[i]!);
      }
      const out = await session.run(feeds);
      const next = new Map<string, Float32Array>();
      states.forEach((s, i) => {
        next.set(names[i]!, out[s.updated]!.data as Float32Array);
        if (s.expAvgUpdated) {
          next.set(`${names[i]}.exp_avg`, out[s.expAvgUpdated]!.data as Float32Array);
          next.set(`${names[i]}.exp_avg_sq`, out[s.expAvgSqUpdated!]!.data as Float32Array);
        }
      });
      state = next;
      trace.push(names.map((n) => state.get(n)!));
    }
    return trace;
  }

  it('the reference gradients are large enough that clipping engages (and one step where it does not)', () => {
    const norms = clip.cases[0]!.trace.map((s) => s.norm);
    expect(norms.filter((n) => n > 10 * clip.maxNorm).length).toBeGreaterThanOrEqual(3);
    expect(norms.some((n) => n < clip.maxNorm)).toBe(true);
  });

  for (const [caseName, cfg] of [
    ['adamw-clip', { ...DEFAULT_ADAMW, maxGradNorm: 1 }],
    ['sgd-clip', { ...DEFAULT_ADAMW, name: 'sgd', weightDecay: 0, maxGradNorm: 1 }],
    ['adamw-clip-masked', { ...DEFAULT_ADAMW, weightDecay: 0, maxGradNorm: 1 }],
  ] as const) {
    it(`${caseName} matches torch.nn.utils.clip_grad_norm_ + torch.optim over ${clip.grads.length} steps`, async () => {
      const want = clip.cases.find((c) => c.name === caseName)!;
      expect(clip.maxNorm).toBe(cfg.maxGradNorm);
      const got = await runClipped(cfg as OptimizerConfig, want.masked);
      got.forEach((params, t) => params.forEach((p, i) => expectClose(p, want.trace[t]!.params[i]!, 1e-5)));
    });
  }

  it('without clipping the same updates differ from the clipped reference (the test can fail)', async () => {
    const want = clip.cases.find((c) => c.name === 'sgd-clip')!;
    const got = await runClipped({ ...DEFAULT_ADAMW, name: 'sgd', weightDecay: 0 }, false);
    const diff = Math.max(...got[0]![0]!.map((v, k) => Math.abs(v - want.trace[0]!.params[0]![k]!)));
    expect(diff).toBeGreaterThan(1e-3);
  });

  it('refuses a negative or non-finite threshold', () => {
    const g = new Graph();
    for (const bad of [-1, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(() => appendOptimizerUpdate(g, [], { ...DEFAULT_ADAMW, maxGradNorm: bad }, { lr: 'lr', step: 'step' })).toThrow(/--max-grad-norm must be a number ≥ 0/);
    }
  });
});
