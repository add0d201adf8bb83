/**
 * Child process of the training benchmark: times native train steps (or inference forwards) of one
 * artifacts folder on one batch shape, and prints one JSON line. Run in its own process so that its
 * peak RSS is its own. Train steps go through the native backend as `train` drives it (the gradient
 * model, then the optimizer update in place); `BENCH_UPDATE=graph` times the train-step graph instead.
 * With BENCH_PAIRED=N (train mode), after the timed steps and their peak RSS, the artifacts' inference
 * model joins in and N forward/step pairs run back to back: the step ÷ forward ratio of each pair,
 * whose two halves see the same machine (this VM's speed drifts by tens of percent over minutes,
 * so a step and a forward timed in separate processes minutes apart do not divide well).
 *   node --import tsx bench/workers/native-step.ts <artifacts-dir> <mode: train|infer> <batch> <seq> <steps> [threads]
 */
import * as ort from 'onnxruntime-node';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Batch } from '../../src/data/batching.js';
import { readManifest } from '../../src/artifacts/generate.js';
import { createSession, NativeBackend } from '../../src/train/backends/native.js';

const [dir, mode, batchArg, seqArg, stepsArg, threadsArg] = process.argv.slice(2);
const batch = Number(batchArg), seq = Number(seqArg), steps = Number(stepsArg), threads = Number(threadsArg ?? 2);
const ids = BigInt64Array.from({ length: batch * seq }, (_, i) => BigInt(100 + ((i * 7919) % 900)));
const attentionMask = new BigInt64Array(batch * seq).fill(1n);
const tokenTypeIds = new BigInt64Array(batch * seq);

const times: number[] = [];
let loss = NaN;
let sessionMs = 0;
let peakRssMB = 0;
let paired: { pairs: number; forwardMsMedian: number; stepMsMedian: number; stepOverForwardMedian: number } | null = null;
const peakRss = () => Math.round(process.resourceUsage().maxRSS / 1024);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const inferFeeds = (): Record<string, ort.Tensor> => ({
  input_ids: new ort.Tensor('int64', ids, [batch, seq]),
  attention_mask: new ort.Tensor('int64', attentionMask, [batch, seq]),
  token_type_ids: new ort.Tensor('int64', tokenTypeIds, [batch, seq]),
});
if (mode === 'train') {
  const t0 = performance.now();
  const backend = await NativeBackend.create({
    artifactsDir: path.resolve(dir!), manifest: readManifest(dir!), device: 'cpu', threads, batchSize: batch,
    update: process.env.BENCH_UPDATE === 'graph' ? 'graph' : 'host',
  });
  sessionMs = performance.now() - t0;
  const b: Batch = {
    inputIds: ids, attentionMask, tokenTypeIds, labels: BigInt64Array.from({ length: batch }, (_, i) => BigInt(i % 2)),
    batch, seqLen: seq, ids: [], indices: [], epoch: 0, step: 0,
  };
  for (let s = 1; s <= steps; s++) {
    const t = performance.now();
    loss = (await backend.trainStep(b, { learningRate: 2e-5, step: s, gradScale: 1 })).loss;
    times.push(performance.now() - t);
  }
  peakRssMB = peakRss();
  const pairs = Number(process.env.BENCH_PAIRED ?? 0);
  if (pairs > 0) {
    const manifest = JSON.parse(fs.readFileSync(path.join(dir!, 'manifest.json'), 'utf8'));
    const infer = await createSession(path.join(dir!, manifest.native.infer.file), 'cpu', threads);
    const feeds = inferFeeds();
    await infer.run(feeds); // its first run plans memory: not a pair
    const fwd: number[] = [], step: number[] = [], ratio: number[] = [];
    // A pause before each run: each session's pool threads spin for a while after its run, and would
    // otherwise take a core from the other session's run.
    const settle = () => new Promise((r) => setTimeout(r, 50));
    for (let i = 0; i < pairs; i++) {
      await settle();
      const t0 = performance.now();
      await infer.run(feeds);
      const f = performance.now() - t0;
      await settle();
      const t1 = performance.now();
      await backend.trainStep(b, { learningRate: 2e-5, step: steps + 1 + i, gradScale: 1 });
      const st = performance.now() - t1;
      fwd.push(f); step.push(st); ratio.push(st / f);
    }
    await infer.release();
    paired = { pairs, forwardMsMedian: +median(fwd).toFixed(1), stepMsMedian: +median(step).toFixed(1), stepOverForwardMedian: +median(ratio).toFixed(3) };
  }
  await backend.release();
} else {
  const manifest = JSON.parse(fs.readFileSync(path.join(dir!, 'manifest.json'), 'utf8'));
  const t0 = performance.now();
  // The session options the native training backend uses.
  const session = await createSession(path.join(dir!, manifest.native.infer.file), 'cpu', threads);
  sessionMs = performance.now() - t0;
  const feeds = inferFeeds();
  for (let s = 1; s <= steps; s++) {
    const t = performance.now();
    await session.run(feeds);
    times.push(performance.now() - t);
  }
  await session.release();
  peakRssMB = peakRss();
}
const stepMs = median(times.slice(Math.min(2, times.length - 1)));
process.stdout.write(JSON.stringify({
  mode, batch, seq, steps, sessionMs: Math.round(sessionMs), stepMsMedian: +stepMs.toFixed(1),
  examplesPerSec: +((batch * 1000) / stepMs).toFixed(2), loss, peakRssMB, paired,
  stepMs: times.map((x) => +x.toFixed(1)),
}) + '\n');
