/**
 * Artifact generation and native training-step speed (issue: training artifacts §5, trainer §4).
 *
 * For bert-mini and bert-base (random init) and the selections `layernorm` and `full`: artifact
 * generation time and peak RSS; native train-step time at batch 32×128 and 8×128; inference
 * forward time on the same batches; the ratios layernorm/full and step/forward. Every measurement
 * runs in its own child process (its peak RSS is its own), side by side in this one run.
 * Env: BENCH_MODELS=bert-mini,bert-base  BENCH_STEPS=6  BENCH_THREADS=2
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { runWorker } from './child.js';

interface StepResult { stepMsMedian: number; examplesPerSec: number; peakRssMB: number; loss?: number }

export async function run(): Promise<object> {
  const models = (process.env.BENCH_MODELS ?? 'bert-mini,bert-base').split(',');
  const steps = process.env.BENCH_STEPS ?? '6';
  const threads = process.env.BENCH_THREADS ?? '2';
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'modtune-bench-train-'));
  const results: Record<string, unknown>[] = [];
  try {
    for (const preset of models) {
      const modelFile = path.join(work, `${preset}.onnx`);
      runWorker('build-model.ts', [preset, modelFile]);
      const modelMB = fs.statSync(modelFile).size / 2 ** 20;
      const entry: Record<string, unknown> = { model: preset, modelMB: +modelMB.toFixed(1), generate: {}, train: {}, inference: {} };
      for (const spec of ['layernorm', 'full']) {
        const out = path.join(work, `${preset}-${spec}`);
        const g = runWorker<{ generateMs: number; peakRssMB: number; trainableCount: number }>('generate.ts', [modelFile, spec, out, 'native']);
        (entry.generate as Record<string, unknown>)[spec] = { ...g, peakRssOverModel: +(g.peakRssMB / modelMB).toFixed(2) };
        for (const batch of ['32', '8']) {
          const r = runWorker<StepResult>('native-step.ts', [out, 'train', batch, '128', steps, threads]);
          (entry.train as Record<string, unknown>)[`${spec}@${batch}x128`] = r;
        }
      }
      for (const batch of ['32', '8']) {
        const r = runWorker<StepResult>('native-step.ts', [path.join(work, `${preset}-layernorm`), 'infer', batch, '128', steps, threads]);
        (entry.inference as Record<string, unknown>)[`${batch}x128`] = r;
      }
      const tr = entry.train as Record<string, StepResult>;
      const inf = entry.inference as Record<string, StepResult>;
      entry.ratios = Object.fromEntries(['32', '8'].flatMap((b) => [
        [`layernormOverFull@${b}x128`, +(tr[`layernorm@${b}x128`]!.stepMsMedian / tr[`full@${b}x128`]!.stepMsMedian).toFixed(3)],
        [`layernormOverForward@${b}x128`, +(tr[`layernorm@${b}x128`]!.stepMsMedian / inf[`${b}x128`]!.stepMsMedian).toFixed(3)],
        [`fullOverForward@${b}x128`, +(tr[`full@${b}x128`]!.stepMsMedian / inf[`${b}x128`]!.stepMsMedian).toFixed(3)],
      ]));
      results.push(entry);
      process.stderr.write(`bench: ${preset} done\n`);
    }
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
  return { threads: Number(threads), steps: Number(steps), results };
}
