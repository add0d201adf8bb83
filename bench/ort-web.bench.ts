/**
 * ort-web backend speed next to the native backend, on the same artifacts (`--format both`), in one
 * run: examples/s of train steps at batch 32×128 (median after 2 warm-up steps), each measurement in
 * its own child process. The ort-web steps go through `OrtWebBackend.trainStep` (forward + backward
 * in onnxruntime-web's WebAssembly training build, its optimizer step, and reading the trainable
 * parameters back); the native ones through native/train_step.onnx on onnxruntime-node.
 * bert-base runs `layernorm` only, and reports the failure if it does not fit the 4 GiB wasm heap.
 * Env: BENCH_ORT_RUNS=bert-mini:layernorm+full,bert-base:layernorm  BENCH_STEPS=5  BENCH_THREADS=2
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { BENCH_DIR, ROOT, runWorker } from './child.js';

interface StepResult { stepMsMedian?: number; examplesPerSec?: number; peakRssMB: number; error?: string; [k: string]: unknown }

const BATCH = '32';
const SEQ = '128';

/** build-model.ts prints nothing, so it is run without runWorker's JSON parsing. */
function buildModel(preset: string, file: string): void {
  const r = spawnSync(process.execPath, ['--import', 'tsx', path.join(BENCH_DIR, 'workers', 'build-model.ts'), preset, file], { cwd: ROOT, encoding: 'utf8' });
  if (r.status !== 0 || !fs.existsSync(file)) throw new Error(`build-model.ts ${preset} failed (${r.status ?? r.signal}): ${r.stderr.slice(-2000)}`);
}

function measure(worker: string, args: string[]): StepResult {
  try {
    return runWorker<StepResult>(worker, args);
  } catch (e) {
    return { error: (e as Error).message.slice(0, 2000), peakRssMB: NaN };
  }
}

export async function run(): Promise<object> {
  const runs = (process.env.BENCH_ORT_RUNS ?? 'bert-mini:layernorm+full,bert-base:layernorm').split(',').map((r) => {
    const [preset, specs] = r.split(':');
    return { preset: preset!, specs: (specs ?? 'layernorm').split('+') };
  });
  const steps = process.env.BENCH_STEPS ?? '5';
  const threads = process.env.BENCH_THREADS ?? '2';
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'modtune-bench-ortweb-'));
  const results: Record<string, unknown>[] = [];
  try {
    for (const { preset, specs } of runs) {
      const modelFile = path.join(work, `${preset}.onnx`);
      buildModel(preset, modelFile);
      for (const spec of specs) {
        const out = path.join(work, `${preset}-${spec}`);
        const g = runWorker<{ generateMs: number; trainableCount: number }>('generate.ts', [modelFile, spec, out, 'both']);
        const native = measure('native-step.ts', [out, 'train', BATCH, SEQ, steps, threads]);
        const ortWeb = measure('ort-web-step.ts', [out, BATCH, SEQ, steps, threads]);
        const ratio = native.examplesPerSec && ortWeb.examplesPerSec ? +(ortWeb.examplesPerSec / native.examplesPerSec).toFixed(3) : null;
        results.push({
          model: preset, spec, shape: `${BATCH}x${SEQ}`, trainableCount: g.trainableCount,
          ortWeb, native, ortWebOverNative: ratio,
        });
        process.stderr.write(`bench: ort-web ${preset} ${spec}: ${ortWeb.examplesPerSec ?? ortWeb.error} ex/s (native ${native.examplesPerSec ?? native.error})\n`);
        fs.rmSync(out, { recursive: true, force: true });
      }
    }
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
  return { threads: Number(threads), steps: Number(steps), loadAverage: os.loadavg().map((x) => +x.toFixed(1)), results };
}
