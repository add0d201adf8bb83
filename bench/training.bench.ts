/**
 * Artifact generation and native training-step speed (issue: training artifacts §5, trainer §4).
 *
 * For bert-mini and bert-base (random init) and the selections `layernorm` and `full`: artifact
 * generation time and peak RSS; native train-step time at batch 32×128 and 8×128; inference
 * forward time on the same batches; the ratios layernorm/full and step/forward. Every measurement
 * runs in its own child process (its peak RSS is its own), side by side in this one run.
 * With Debian's python3-torch present, PyTorch runs the same configuration right after ours
 * (scripts/torch_baseline_bench.py, 2 threads) and the speed-up is reported next to it.
 * Our steps run the way the CLI runs them: with glibc's huge-page malloc when this machine has it
 * (src/cli/huge-pages.ts; `train` and `pretrain` relaunch themselves with it). `full` steps also run
 * a second time with 4 KiB pages (`smallPages`), the cost a user who turns it off pays. PyTorch runs
 * both ways too and its faster run is the one compared against (`pytorch.malloc` says which).
 * The step ÷ forward ratios come twice: from those separate runs, and `paired`, from forward/step
 * pairs run back to back in the step's process after its timed steps (bench/workers/native-step.ts),
 * which this VM's drift over minutes does not reach.
 * Env: BENCH_MODELS=bert-mini,bert-base  BENCH_STEPS=6  BENCH_THREADS=2  BENCH_TORCH=0 (skip PyTorch)
 *      BENCH_SMALL_PAGES=0 (skip the 4 KiB-page runs)  BENCH_PAIRED=6 (forward/step pairs; 0: none)
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { fasterMalloc, ROOT, runWorker, SMALL_PAGES_ENV, TOOL_ENV } from './child.js';

const PYTHON = process.env.BENCH_PYTHON ?? '/usr/bin/python3';

/** PyTorch's numbers for one configuration, from scripts/torch_baseline_bench.py, or null without torch. */
function torchRun(cfg: Record<string, unknown>, malloc: Record<string, string>): Record<string, number> | null {
  if (process.env.BENCH_TORCH === '0') return null;
  const env = { ...process.env, OMP_NUM_THREADS: '2', OPENBLAS_NUM_THREADS: '2', OMP_WAIT_POLICY: 'PASSIVE', ...malloc };
  const r = spawnSync(PYTHON, [path.join(ROOT, 'scripts/torch_baseline_bench.py'), JSON.stringify({ ...cfg, seq: 128 })], { cwd: ROOT, env, encoding: 'utf8', timeout: 30 * 60_000 });
  if (r.status !== 0) {
    process.stderr.write(`bench: PyTorch baseline unavailable (${(r.stderr || r.error?.message || '').trim().split('\n').pop()})\n`);
    return null;
  }
  return JSON.parse(r.stdout.trim().split('\n').pop()!);
}

/** PyTorch with glibc's default malloc and with huge pages; the faster run, and which it was. */
function torchBest(cfg: Record<string, unknown>, key: 'stepMsMedian' | 'forwardMsMedian'): { numbers: Record<string, number>; malloc: string; otherMallocMs: number | null } | null {
  const best = fasterMalloc((env) => torchRun(cfg, env), (r) => r[key]!);
  return best && { numbers: best.result, malloc: best.malloc, otherMallocMs: best.other ? best.other[key]! : null };
}

interface StepResult { stepMsMedian: number; examplesPerSec: number; peakRssMB: number; loss?: number; paired?: { stepOverForwardMedian: number } | null }

export async function run(): Promise<object> {
  const models = (process.env.BENCH_MODELS ?? 'bert-mini,bert-base').split(',');
  const steps = process.env.BENCH_STEPS ?? '6';
  const threads = process.env.BENCH_THREADS ?? '2';
  const pairs = process.env.BENCH_PAIRED ?? '6';
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
          const r = runWorker<StepResult>('native-step.ts', [out, 'train', batch, '128', steps, threads], undefined, { ...TOOL_ENV, BENCH_PAIRED: pairs });
          const small = spec === 'full' && TOOL_ENV.GLIBC_TUNABLES && process.env.BENCH_SMALL_PAGES !== '0'
            ? runWorker<StepResult>('native-step.ts', [out, 'train', batch, '128', steps, threads], undefined, { ...SMALL_PAGES_ENV, BENCH_PAIRED: '0' })
            : null;
          const best = torchBest({ model: preset, mode: 'train', selection: spec, batch: Number(batch) }, 'stepMsMedian');
          const t = best?.numbers;
          (entry.train as Record<string, unknown>)[`${spec}@${batch}x128`] = {
            ...r,
            stepMs: undefined,
            malloc: TOOL_ENV.GLIBC_TUNABLES || 'default',
            pytorch: t && { examplesPerSec: t.examplesPerSec, stepMsMedian: t.stepMsMedian, peakRssMB: t.peakRssMB, malloc: best!.malloc, otherMallocStepMs: best!.otherMallocMs },
            speedupOverPytorch: t ? +(r.examplesPerSec / t.examplesPerSec!).toFixed(2) : null,
            smallPages: small && {
              stepMsMedian: small.stepMsMedian, examplesPerSec: small.examplesPerSec, peakRssMB: small.peakRssMB,
              speedupOverPytorch: t ? +(small.examplesPerSec / t.examplesPerSec!).toFixed(2) : null,
            },
          };
        }
      }
      for (const batch of ['32', '8']) {
        const r = runWorker<StepResult>('native-step.ts', [path.join(work, `${preset}-layernorm`), 'infer', batch, '128', steps, threads], undefined, { ...TOOL_ENV, BENCH_PAIRED: '0' });
        const best = batch === '32' ? torchBest({ model: preset, mode: 'inference', batch: 32 }, 'forwardMsMedian') : null;
        const t = best?.numbers;
        (entry.inference as Record<string, unknown>)[`${batch}x128`] = {
          ...r,
          stepMs: undefined,
          pytorch: t && { forwardMsMedian: t.forwardMsMedian, peakRssMB: t.peakRssMB, malloc: best!.malloc, otherMallocForwardMs: best!.otherMallocMs },
          speedupOverPytorch: t ? +(t.forwardMsMedian! / r.stepMsMedian).toFixed(2) : null,
        };
      }
      const tr = entry.train as Record<string, StepResult>;
      const inf = entry.inference as Record<string, StepResult>;
      entry.ratios = Object.fromEntries(['32', '8'].flatMap((b) => [
        [`layernormOverFull@${b}x128`, +(tr[`layernorm@${b}x128`]!.stepMsMedian / tr[`full@${b}x128`]!.stepMsMedian).toFixed(3)],
        [`layernormOverForward@${b}x128`, +(tr[`layernorm@${b}x128`]!.stepMsMedian / inf[`${b}x128`]!.stepMsMedian).toFixed(3)],
        [`fullOverForward@${b}x128`, +(tr[`full@${b}x128`]!.stepMsMedian / inf[`${b}x128`]!.stepMsMedian).toFixed(3)],
        [`layernormOverForwardPaired@${b}x128`, tr[`layernorm@${b}x128`]!.paired?.stepOverForwardMedian ?? null],
        [`fullOverForwardPaired@${b}x128`, tr[`full@${b}x128`]!.paired?.stepOverForwardMedian ?? null],
      ]));
      results.push(entry);
      process.stderr.write(`bench: ${preset} done\n`);
    }
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
  return { threads: Number(threads), steps: Number(steps), pairs: Number(pairs), malloc: TOOL_ENV.GLIBC_TUNABLES || 'default', results };
}
