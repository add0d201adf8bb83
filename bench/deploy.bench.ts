/**
 * Deployment: latency of a merged (tuned) model, batch 1 at 32 and 128 tokens, on onnxruntime-node
 * and onnxruntime-web (wasm, 1 thread), for the bert-mini and bert-base shapes; the serve-model
 * multi-task model against the merged one (run alternately, side by side); and the cost of a task
 * switch between two `layernorm` deltas. Medians.
 *
 * Each shape: a random base (seeded), real artifacts (generateArtifacts), a run folder with perturbed
 * LayerNorm values, `exportDelta`, `mergeFiles`, `serveModelFiles` — the code paths users run.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildBert } from '../src/bert/build.js';
import { presetConfig } from '../src/bert/config.js';
import { readSafetensors, writeSafetensors } from '../src/bert/safetensors.js';
import { generateArtifacts } from '../src/artifacts/generate.js';
import { exportDelta } from '../src/export/export.js';
import { mergeFiles } from '../src/export/merge.js';
import { serveModelFiles } from '../src/export/multitask.js';
import { saveModel } from '../src/onnx/io.js';
import { EncodedInput, Predictor } from '../src/predict/predictor.js';
import type { RuntimeName } from '../src/predict/runtime.js';
import { Rng } from '../src/util/random.js';

const SHARED = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../shared');
const VOCAB = path.join(SHARED, 'tokenizers/bert-base-uncased/vocab.txt');

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const round = (x: number, d = 3) => Number(x.toFixed(d));

/** A run folder with perturbed LayerNorm (and head) values, exported as a delta. */
function layerNormDelta(base: string, dir: string, task: string, seed: number): string {
  const artifacts = path.join(dir, 'artifacts');
  generateArtifacts({ model: base, train: 'layernorm', task, out: artifacts, dropout: 0, tokenizer: VOCAB, format: 'native' });
  const rng = new Rng(seed);
  const initial = readSafetensors(path.join(artifacts, 'params.safetensors')).tensors;
  const tuned = new Map([...initial].map(([k, t]) => [k, { shape: t.shape, data: Float32Array.from(t.data, (v) => v + rng.normal(0, 0.02)) }]));
  fs.mkdirSync(path.join(dir, 'best'), { recursive: true });
  writeSafetensors(path.join(dir, 'best', 'params.safetensors'), tuned);
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ artifacts }));
  const out = path.join(dir, 'delta');
  exportDelta({ run: dir, out });
  // The artifacts' frozen weights are not needed any more: free the disk.
  fs.rmSync(artifacts, { recursive: true, force: true });
  return out;
}

function sequence(tokens: number, seed: number): EncodedInput {
  const rng = new Rng(seed);
  const ids = [101, ...Array.from({ length: tokens - 2 }, () => 1000 + rng.int(28000)), 102];
  return { inputIds: ids, tokenTypeIds: ids.map(() => 0) };
}

async function timeRuns(p: Predictor, input: EncodedInput, n: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await p.logits([input]);
    out.push(performance.now() - t0);
  }
  return out;
}

async function shapeBench(preset: 'bert-mini' | 'bert-base', root: string): Promise<object> {
  const dir = path.join(root, preset);
  fs.mkdirSync(dir, { recursive: true });
  const base = path.join(dir, 'base.onnx');
  saveModel(buildBert({ config: presetConfig(preset), seed: 1, perturbLayerNorm: true }), base);
  const sst = layerNormDelta(base, path.join(dir, 'run-sst2'), 'sst2', 1);
  const mnli = layerNormDelta(base, path.join(dir, 'run-mnli'), 'mnli', 2);
  const merged = path.join(dir, 'sst2.onnx');
  mergeFiles({ base, delta: sst, out: merged });
  const multi = path.join(dir, 'multi.onnx');
  serveModelFiles({ base, deltas: [sst, mnli], out: multi });
  const big = preset === 'bert-base';
  const result: Record<string, unknown> = {
    deltaBytes: fs.statSync(path.join(sst, 'delta.safetensors')).size,
    mergedModelBytes: fs.statSync(merged).size,
    multiModelBytes: fs.statSync(multi).size,
  };

  for (const runtime of ['node', 'web'] as RuntimeName[]) {
    const single = await Predictor.load({ base: merged, runtime });
    const served = await Predictor.load({ base: multi, deltas: [sst, mnli], runtime });
    served.useTask('SST-2');
    const perRuntime: Record<string, unknown> = {};
    for (const tokens of [32, 128]) {
      const input = sequence(tokens, tokens);
      const n = big ? (runtime === 'web' ? 9 : 21) : 41;
      await timeRuns(single, input, 3);
      await timeRuns(served, input, 3);
      // Alternate the two models so that machine load hits both alike.
      const a: number[] = [];
      const b: number[] = [];
      for (let i = 0; i < n; i++) {
        a.push(...(await timeRuns(single, input, 1)));
        b.push(...(await timeRuns(served, input, 1)));
      }
      // The median of pairwise ratios cancels load that drifts over the run; both are reported.
      perRuntime[`tokens${tokens}`] = {
        mergedMs: round(median(a), 2), multiTaskMs: round(median(b), 2),
        multiOverMerged: round(median(b) / median(a)), medianPairRatio: round(median(b.map((x, i) => x / a[i]!))),
      };
    }
    // Task switch: useTask alone, and the run right after a switch against a run without one.
    const input = sequence(32, 7);
    const switchUs: number[] = [];
    const afterSwitch: number[] = [];
    const noSwitch: number[] = [];
    const n = big ? (runtime === 'web' ? 7 : 15) : 40;
    for (let i = 0; i < n; i++) {
      const t0 = performance.now();
      served.useTask(i % 2 ? 'SST-2' : 'MNLI');
      switchUs.push((performance.now() - t0) * 1000);
      afterSwitch.push(...(await timeRuns(served, input, 1)));
      noSwitch.push(...(await timeRuns(served, input, 1)));
    }
    perRuntime.taskSwitch = {
      useTaskUs: round(median(switchUs), 1),
      firstRunAfterSwitchMs: round(median(afterSwitch), 2),
      runWithoutSwitchMs: round(median(noSwitch), 2),
    };
    await Promise.all([single.release(), served.release()]);
    result[runtime] = perRuntime;
  }
  fs.rmSync(dir, { recursive: true, force: true });
  return result;
}

export async function run(): Promise<object> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'modtune-bench-deploy-'));
  try {
    const out: Record<string, unknown> = {
      note: 'batch 1; onnxruntime-node default threads, onnxruntime-web wasm 1 thread; merged vs multi-task timed alternately (medianPairRatio: median of per-pair ratios); medians',
      loadAverage1m: round(os.loadavg()[0]!, 2),
    };
    for (const preset of ['bert-mini', 'bert-base'] as const) {
      process.stderr.write(`bench deploy: ${preset}...\n`);
      out[preset] = await shapeBench(preset, root);
    }
    out.loadAverage1mAfter = round(os.loadavg()[0]!, 2);
    return out;
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
}
