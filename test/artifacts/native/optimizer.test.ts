import { describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { appendOptimizerUpdate, DEFAULT_ADAMW, OptimizerConfig } from '../../../src/artifacts/native/optimizer.js';
import { DataType } from '../../../src/onnx/dtype.js';
import { Graph } from '../../../src/onnx/graph.js';
import { encodeModel, newModel } from '../../../src/onnx/io.js';
import { ROOT } from '../../helpers/paths.js';

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

function expectClose(got: ArrayLike<number>, want: number[], rel: number) {
  for (let i = 0; i < want.length; i++) {
    const tol = rel * Math.max(1e-3, Math.abs(want[i]!));
    expect(Math.abs(got[i]! - want[i]!), `entry ${i}: ${got[i]} vs ${want[i]}`).toBeLessThanOrEqual(tol);
  }
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
