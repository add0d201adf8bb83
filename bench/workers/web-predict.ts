/**
 * Child process of the web benchmark: prediction latency of the Predictor on onnxruntime-web's wasm
 * build under Node (its thread count is fixed once per process), 1 × 32 tokens, median ms.
 *   node --import tsx bench/workers/web-predict.ts <base.onnx> <delta-dir>... --threads N --runs N
 */
import { Predictor } from '../../src/predict/predictor.js';

const args = process.argv.slice(2);
const flag = (name: string) => Number(args[args.indexOf(name) + 1]);
const threads = flag('--threads');
const runs = flag('--runs');
const [base, ...deltas] = args.slice(0, args.indexOf('--threads'));
const p = await Predictor.load({ base: base!, deltas, runtime: 'web', numThreads: threads });
const ids = [101, ...Array.from({ length: 30 }, (_, i) => 1000 + ((i * 7919) % 28000)), 102];
const input = { inputIds: ids, tokenTypeIds: ids.map(() => 0) };
for (let i = 0; i < 5; i++) await p.logits([input]);
const times: number[] = [];
for (let i = 0; i < runs; i++) {
  const t0 = performance.now();
  await p.logits([input]);
  times.push(performance.now() - t0);
}
await p.release();
times.sort((a, b) => a - b);
process.stdout.write(JSON.stringify({ threads, predictMs: Number(times[Math.floor(times.length / 2)]!.toFixed(3)) }) + '\n');
