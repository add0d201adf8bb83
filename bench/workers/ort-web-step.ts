/**
 * Child process of the ort-web benchmark: times train steps of the ort-web backend (ORT training
 * artifacts on onnxruntime-web's training build) on one artifacts folder and batch shape, through
 * `OrtWebBackend.trainStep` as the trainer calls it (forward + backward, optimizer step, reading the
 * trainable parameters back), and prints one JSON line. A failure (e.g. the 4 GiB wasm heap) is
 * printed as `{ "error": ... }` rather than thrown, so the benchmark can report it.
 *   node --import tsx bench/workers/ort-web-step.ts <artifacts-dir> <batch> <seq> <steps> [threads]
 */
import { readManifest } from '../../src/artifacts/generate.js';
import { scheduledLearningRate } from '../../src/artifacts/ort/optimizer.js';
import type { Batch } from '../../src/data/batching.js';
import { OrtWebBackend } from '../../src/train/backends/ort-web.js';

const [dir, batchArg, seqArg, stepsArg, threadsArg] = process.argv.slice(2);
const batch = Number(batchArg), seq = Number(seqArg), steps = Number(stepsArg), threads = Number(threadsArg ?? 2);
const manifest = readManifest(dir!);
const data: Batch = {
  inputIds: BigInt64Array.from({ length: batch * seq }, (_, i) => BigInt(100 + ((i * 7919) % 900))),
  attentionMask: new BigInt64Array(batch * seq).fill(1n),
  tokenTypeIds: new BigInt64Array(batch * seq),
  labels: BigInt64Array.from({ length: batch }, (_, i) => BigInt(i % 2)),
  batch, seqLen: seq, ids: [], indices: [], epoch: 0, step: 0,
};

const out: Record<string, unknown> = { batch, seq, steps, threads };
const stepMs: number[] = [];
let backend: OrtWebBackend | undefined;
try {
  const t0 = performance.now();
  backend = await OrtWebBackend.create({ artifactsDir: dir!, manifest, device: 'cpu', threads, batchSize: batch, gradAccum: 1 });
  out.sessionMs = Math.round(performance.now() - t0);
  out.wasmThreads = backend.threads;
  let loss = NaN;
  for (let s = 1; s <= steps; s++) {
    const control = { learningRate: scheduledLearningRate(manifest.optimizer.lr, manifest.optimizer.schedule, s), step: s, gradScale: 1 };
    const t = performance.now();
    loss = (await backend.trainStep(data, control)).loss;
    stepMs.push(performance.now() - t);
  }
  // Reading the parameters back (done inside every trainStep) on its own, for the record.
  const t = performance.now();
  await backend.allParameters();
  out.readAllParametersMs = +(performance.now() - t).toFixed(1);
  const warm = stepMs.slice(Math.min(2, stepMs.length - 1)).sort((a, b) => a - b);
  const median = warm[Math.floor(warm.length / 2)]!;
  Object.assign(out, { stepMsMedian: +median.toFixed(1), examplesPerSec: +((batch * 1000) / median).toFixed(2), loss });
} catch (e) {
  out.error = e instanceof Error ? e.message : String(e);
} finally {
  await backend?.release().catch(() => undefined);
}
out.stepMs = stepMs.map((x) => +x.toFixed(1));
out.peakRssMB = Math.round(process.resourceUsage().maxRSS / 1024);
process.stdout.write(JSON.stringify(out) + '\n');
// The wasm runtime's worker threads (numThreads > 1) would keep the process alive.
process.exit(0);
