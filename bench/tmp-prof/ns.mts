/**
 * Child process of the training benchmark: times native train steps (or inference forwards) of one
 * artifacts folder on one batch shape, and prints one JSON line. Run in its own process so that its
 * peak RSS is its own.
 *   node --import tsx bench/workers/native-step.ts <artifacts-dir> <mode: train|infer> <batch> <seq> <steps> [threads]
 */
import * as ort from 'onnxruntime-node';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readSafetensors } from '../../src/bert/safetensors.js';
import { createSession } from '../../src/train/backends/native.js';

const [dir, mode, batchArg, seqArg, stepsArg, threadsArg] = process.argv.slice(2);
const batch = Number(batchArg), seq = Number(seqArg), steps = Number(stepsArg);
const manifest = JSON.parse(fs.readFileSync(path.join(dir!, 'manifest.json'), 'utf8'));
const file = path.join(dir!, mode === 'infer' ? manifest.native.infer.file : manifest.native.trainStep.file);
const t0 = performance.now();
// The session options the native training backend uses.
const session = process.env.PAR ? await ort.InferenceSession.create(file, { graphOptimizationLevel: 'all', intraOpNumThreads: 2, interOpNumThreads: Number(process.env.PAR), executionMode: 'parallel' }) : await createSession(file, 'cpu', Number(threadsArg ?? 2));
const sessionMs = performance.now() - t0;

const ids = BigInt64Array.from({ length: batch * seq }, (_, i) => BigInt(100 + ((i * 7919) % 900)));
const feeds: Record<string, ort.Tensor> = {
  input_ids: new ort.Tensor('int64', ids, [batch, seq]),
  attention_mask: new ort.Tensor('int64', new BigInt64Array(batch * seq).fill(1n), [batch, seq]),
  token_type_ids: new ort.Tensor('int64', new BigInt64Array(batch * seq), [batch, seq]),
};
const state = new Map<string, Float32Array>();
if (mode === 'train') {
  feeds.labels = new ort.Tensor('int64', BigInt64Array.from({ length: batch }, (_, i) => BigInt(i % 2)), [batch]);
  feeds.learning_rate = new ort.Tensor('float32', new Float32Array([2e-5]), []);
  feeds.grad_scale = new ort.Tensor('float32', new Float32Array([1]), []);
  const init = readSafetensors(path.join(dir!, manifest.initialValues));
  for (const p of manifest.parameters) {
    state.set(p.name, init.tensors.get(p.name)!.data);
    state.set(`${p.name}.exp_avg`, new Float32Array(p.size));
    state.set(`${p.name}.exp_avg_sq`, new Float32Array(p.size));
    feeds[`${p.name}.grad_accumulator`] = new ort.Tensor('float32', new Float32Array(p.size), p.shape);
  }
}
const times: number[] = [];
let loss = NaN;
for (let s = 1; s <= steps; s++) {
  if (mode === 'train') {
    feeds.step = new ort.Tensor('float32', new Float32Array([s]), []);
    for (const p of manifest.parameters) {
      for (const k of [p.name, `${p.name}.exp_avg`, `${p.name}.exp_avg_sq`]) feeds[k] = new ort.Tensor('float32', state.get(k)!, p.shape);
    }
  }
  const pf0 = process.resourceUsage().minorPageFault;
  const t = performance.now();
  const out = await session.run(feeds);
  times.push(performance.now() - t);
  console.error('step', s, (performance.now()-t).toFixed(0), 'ms faults', process.resourceUsage().minorPageFault - pf0);
  if (mode === 'train') {
    loss = (out.loss!.data as Float32Array)[0]!;
    for (const p of manifest.parameters) {
      state.set(p.name, out[`${p.name}.updated`]!.data as Float32Array);
      state.set(`${p.name}.exp_avg`, out[`${p.name}.exp_avg.updated`]!.data as Float32Array);
      state.set(`${p.name}.exp_avg_sq`, out[`${p.name}.exp_avg_sq.updated`]!.data as Float32Array);
    }
  }
}
const warm = times.slice(Math.min(2, times.length - 1)).sort((a, b) => a - b);
const median = warm[Math.floor(warm.length / 2)]!;
process.stdout.write(JSON.stringify({
  mode, batch, seq, steps, sessionMs: Math.round(sessionMs), stepMsMedian: +median.toFixed(1),
  examplesPerSec: +((batch * 1000) / median).toFixed(2), loss, peakRssMB: Math.round(process.resourceUsage().maxRSS / 1024),
  stepMs: times.map((x) => +x.toFixed(1)),
}) + '\n');
