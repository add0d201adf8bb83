/**
 * Artifact generation and native training-step speed (issue: training artifacts §5, trainer §4).
 *
 * For bert-mini and bert-base (random init) and the selections `layernorm` and `full`: artifact
 * generation time and peak RSS; native train-step time at batch 32×128 and 8×128; inference
 * forward time on the same batches; the ratios layernorm/full and step/forward. Every measurement
 * runs in its own child process (its peak RSS is its own), side by side in this one run.
 * With Debian's python3-torch present, PyTorch runs the same configuration right after ours
 * (scripts/torch_baseline_bench.py, 2 threads) and the speed-up is reported next to it.
 * `full` steps also run a second time with glibc's malloc told to back large allocations with huge
 * pages (GLIBC_TUNABLES=glibc.malloc.hugetlb=1, `tunedMalloc`): onnxruntime-node copies every
 * output into a fresh ArrayBuffer, and a full step's outputs (parameters and both moments) are
 * three model-sized buffers whose pages are faulted in again on every step.
 * Env: BENCH_MODELS=bert-mini,bert-base  BENCH_STEPS=6  BENCH_THREADS=2  BENCH_TORCH=0 (skip PyTorch)
 *      BENCH_TUNED_MALLOC=0 (skip the tunedMalloc runs)
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { ROOT, runWorker } from './child.js';

const PYTHON = process.env.BENCH_PYTHON ?? '/usr/bin/python3';
const TUNED_MALLOC = 'glibc.malloc.hugetlb=1';

/** PyTorch's numbers for one configuration, from scripts/torch_baseline_bench.py, or null without torch. */
function torchRun(cfg: Record<string, unknown>): Record<string, number> | null {
  if (process.env.BENCH_TORCH === '0') return null;
  const env = { ...process.env, OMP_NUM_THREADS: '2', OPENBLAS_NUM_THREADS: '2', OMP_WAIT_POLICY: 'PASSIVE' };
  const r = spawnSync(PYTHON, [path.join(ROOT, 'scripts/torch_baseline_bench.py'), JSON.stringify({ ...cfg, seq: 128 })], { cwd: ROOT, env, encoding: 'utf8', timeout: 30 * 60_000 });
  if (r.status !== 0) {
    process.stderr.write(`bench: PyTorch baseline unavailable (${(r.stderr || r.error?.message || '').trim().split('\n').pop()})\n`);
    return null;
  }
  return JSON.parse(r.stdout.trim().split('\n').pop()!);
}

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
          const tuned = spec === 'full' && process.env.BENCH_TUNED_MALLOC !== '0'
            ? runWorker<StepResult>('native-step.ts', [out, 'train', batch, '128', steps, threads], undefined, { GLIBC_TUNABLES: TUNED_MALLOC })
            : null;
          const t = torchRun({ model: preset, mode: 'train', selection: spec, batch: Number(batch) });
          (entry.train as Record<string, unknown>)[`${spec}@${batch}x128`] = {
            ...r,
            stepMs: undefined,
            pytorch: t && { examplesPerSec: t.examplesPerSec, stepMsMedian: t.stepMsMedian, peakRssMB: t.peakRssMB },
            speedupOverPytorch: t ? +(r.examplesPerSec / t.examplesPerSec!).toFixed(2) : null,
            tunedMalloc: tuned && {
              env: `GLIBC_TUNABLES=${TUNED_MALLOC}`, stepMsMedian: tuned.stepMsMedian, examplesPerSec: tuned.examplesPerSec, peakRssMB: tuned.peakRssMB,
              speedupOverPytorch: t ? +(tuned.examplesPerSec / t.examplesPerSec!).toFixed(2) : null,
            },
          };
        }
      }
      for (const batch of ['32', '8']) {
        const r = runWorker<StepResult>('native-step.ts', [path.join(work, `${preset}-layernorm`), 'infer', batch, '128', steps, threads]);
        const t = batch === '32' ? torchRun({ model: preset, mode: 'inference', batch: 32 }) : null;
        (entry.inference as Record<string, unknown>)[`${batch}x128`] = {
          ...r,
          stepMs: undefined,
          pytorch: t && { forwardMsMedian: t.forwardMsMedian, peakRssMB: t.peakRssMB },
          speedupOverPytorch: t ? +(t.forwardMsMedian! / r.stepMsMedian).toFixed(2) : null,
        };
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
