/**
 * The page in Chromium (headless, Debian's chromium through playwright-core) beside the same work
 * in Node, on bert-mini (random weights, two perturbed `layernorm` deltas):
 *   - prediction latency at 1 × 32 tokens (the page's worker: session.run on onnxruntime-web's
 *     training build, wasm threads when cross-origin isolated; Node: the Predictor on
 *     onnxruntime-node and on onnxruntime-web's wasm build);
 *   - one `layernorm` training step at 8 × 64 tokens (page: runTrainStep + runOptimizerStep +
 *     lazyResetGrad in the training worker; Node: the same ort artifacts through the ort-web
 *     backend, and native artifacts on onnxruntime-node, each in its own process);
 *   - a task switch (page: inside the worker, and the page → worker round trip; Node: useTask).
 * Medians after warm-up, for each thread count (page: `?threads=N`). Env: BENCH_WEB_THREADS
 * (default '1,2'), BENCH_WEB_RUNS (prediction runs, default 40), BENCH_WEB_STEPS (default 8).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { chromium } from 'playwright-core';
import { buildBert } from '../src/bert/build.js';
import { presetConfig } from '../src/bert/config.js';
import { readSafetensors, writeSafetensors } from '../src/bert/safetensors.js';
import { generateArtifacts } from '../src/artifacts/generate.js';
import { exportDelta } from '../src/export/export.js';
import { saveModel } from '../src/onnx/io.js';
import { Predictor, type EncodedInput } from '../src/predict/predictor.js';
import { Rng } from '../src/util/random.js';
import { buildPage } from '../src/web/bundle.js';
import { serveWeb } from '../src/web/index.js';
import { median, ROOT, runWorker } from './child.js';

const SHARED = path.resolve(ROOT, '../shared');
const VOCAB = path.join(SHARED, 'tokenizers/bert-base-uncased/vocab.txt');
const CHROMIUM = process.env.MODTUNE_TEST_CHROMIUM ?? '/usr/bin/chromium';
const ARGS = ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-quic', '--no-first-run', '--disable-sync'];
const round = (x: number, d = 3) => Number(x.toFixed(d));

/** Runs in the page (a string: tsx would add helpers to a function's source). ARGS: { runs, steps, rows }. */
const BROWSER_SCRIPT = `(async ({ runs, steps, rows }) => {
  const m = window.modtune;
  await m.ready;
  const med = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const predict = (await m.timeRuns(32, runs + 5, 'SST-2')).times.slice(5);
  const roundTrip = [];
  for (let i = 0; i < 100; i++) {
    const t0 = performance.now();
    await m.useTask(i % 2 ? 'SST-2' : 'RTE');
    roundTrip.push(performance.now() - t0);
  }
  const inWorker = (await m.timeSwitches(100000, ['SST-2', 'RTE'])).msPerSwitch;
  // A run right after a switch, against runs without one.
  const afterSwitch = [];
  for (let i = 0; i < 20; i++) {
    await m.useTask(i % 2 ? 'SST-2' : 'RTE');
    afterSwitch.push((await m.timeRuns(32, 1, i % 2 ? 'SST-2' : 'RTE')).times[0]);
  }
  const train = await m.train({ task: 'SST-2', steps, batchSize: 8, evaluate: false, tsv: { name: 'long.tsv', text: rows } });
  return {
    userAgent: navigator.userAgent, crossOriginIsolated: globalThis.crossOriginIsolated, hardwareConcurrency: navigator.hardwareConcurrency,
    facts: document.querySelector('#facts')?.textContent,
    predictMs: med(predict), predictAfterSwitchMs: med(afterSwitch),
    switchUsInWorker: inWorker * 1000, switchRoundTripMs: med(roundTrip),
    trainStepMs: med(train.stepMs.slice(Math.min(2, train.stepMs.length - 1))), trainLosses: train.losses,
  };
})(ARGS)`;

/** A `layernorm` delta with perturbed values (what a run would export). */
function delta(base: string, dir: string, task: string, seed: number): string {
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
  fs.rmSync(artifacts, { recursive: true, force: true });
  return out;
}

/** SST-2 train rows long enough that every example fills 64 tokens (so a batch is 8 × 64). */
function longRows(n: number): string {
  const rng = new Rng(5);
  const words = 'the film is a quiet and moving story about friendship loss and hope told with care wit and real warmth'.split(' ');
  const lines = ['sentence\tlabel'];
  for (let i = 0; i < n; i++) lines.push(`${Array.from({ length: 90 }, () => words[rng.int(words.length)]).join(' ')}\t${i % 2}`);
  return lines.join('\n') + '\n';
}

function sequence(tokens: number): EncodedInput {
  const ids = [101, ...Array.from({ length: tokens - 2 }, (_, i) => 1000 + ((i * 7919) % 28000)), 102];
  return { inputIds: ids, tokenTypeIds: ids.map(() => 0) };
}

async function nodePrediction(base: string, deltas: string[], runtime: 'node', runs: number, threads: number) {
  const p = await Predictor.load({ base, deltas, runtime, numThreads: threads });
  const input = sequence(32);
  for (let i = 0; i < 5; i++) await p.logits([input]);
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    await p.logits([input]);
    times.push(performance.now() - t0);
  }
  const switchUs: number[] = [];
  for (let i = 0; i < 200; i++) {
    const t0 = performance.now();
    p.useTask(i % 2 ? 'SST-2' : 'RTE');
    switchUs.push((performance.now() - t0) * 1000);
  }
  await p.release();
  return { predictMs: round(median(times)), switchUs: round(median(switchUs), 2) };
}

export async function run(): Promise<object> {
  if (!fs.existsSync(CHROMIUM)) throw new Error(`Chromium not found at ${CHROMIUM}: install Debian's 'chromium' or set MODTUNE_TEST_CHROMIUM`);
  const threadCounts = (process.env.BENCH_WEB_THREADS ?? '1,2').split(',').map(Number);
  const runs = Number(process.env.BENCH_WEB_RUNS ?? 40);
  const steps = Number(process.env.BENCH_WEB_STEPS ?? 8);
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'modtune-bench-web-'));
  try {
    const base = path.join(work, 'bert-mini.onnx');
    saveModel(buildBert({ config: presetConfig('bert-mini'), seed: 0 }), base);
    const deltas = [delta(base, path.join(work, 'sst2'), 'sst2', 1), delta(base, path.join(work, 'rte'), 'rte', 2)];
    const server = await serveWeb({
      model: base, deltas, port: 0, page: await buildPage(path.join(work, 'page')), cacheDir: path.join(work, 'cache'), data: path.join(SHARED, 'glue'),
      trainTasks: ['sst2'], trainRows: 64, devRows: 16, maxLength: 64, batchSize: 8,
    });
    const profile = fs.mkdtempSync(path.join(work, 'profile-'));
    const context = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: ARGS });
    const browser: Record<number, Record<string, unknown>> = {};
    try {
      for (const t of threadCounts) {
        const page = await context.newPage();
        await page.goto(`${server.url}?threads=${t}`);
        browser[t] = await page.evaluate(BROWSER_SCRIPT.replace('ARGS', JSON.stringify({ runs, steps, rows: longRows(64) })));
        await page.close();
        process.stderr.write(`bench: web page, ${t} thread(s): ${JSON.stringify(browser[t])}\n`);
      }
    } finally {
      await context.close();
      await server.close();
    }

    const node: Record<number, Record<string, unknown>> = {};
    const nativeDir = path.join(work, 'native');
    runWorker('generate.ts', [base, 'layernorm', nativeDir, 'native']);
    const siteArtifacts = path.join(server.site.dir, 'train', 'classification-2');
    for (const t of threadCounts) {
      const nodeRuntime = await nodePrediction(base, deltas, 'node', runs, t);
      const ortWeb = runWorker<Record<string, number>>('ort-web-step.ts', [siteArtifacts, '8', '64', String(steps), String(t)]);
      const native = runWorker<Record<string, number>>('native-step.ts', [nativeDir, 'train', '8', '64', String(steps), String(t)]);
      node[t] = {
        predictMs1x32: { onnxruntimeNode: nodeRuntime.predictMs },
        switchUs: nodeRuntime.switchUs,
        layernormStepMs8x64: { ortWebBackend: ortWeb.stepMsMedian ?? ortWeb.error, nativeBackend: native.stepMsMedian ?? native.error },
      };
      process.stderr.write(`bench: web, node ${t} thread(s): ${JSON.stringify(node[t])}\n`);
    }
    // onnxruntime-web's wasm module starts once per process with one thread count: one process each.
    for (const t of threadCounts) {
      const r = runWorker<{ predictMs: number }>('web-predict.ts', [base, ...deltas, '--threads', String(t), '--runs', String(runs)]);
      (node[t]!.predictMs1x32 as Record<string, number>).onnxruntimeWeb = r.predictMs;
    }

    const rows = threadCounts.map((t) => {
      const b = browser[t]! as Record<string, number>;
      const n = node[t]! as { predictMs1x32: Record<string, number>; layernormStepMs8x64: Record<string, number | string> };
      const ratio = (x: number, y: unknown) => (typeof y === 'number' ? round(x / y) : null);
      return {
        threads: t,
        browser: {
          predictMs1x32: round(b.predictMs!), predictAfterSwitchMs1x32: round(b.predictAfterSwitchMs!),
          switchUsInWorker: round(b.switchUsInWorker!, 3), switchRoundTripMs: round(b.switchRoundTripMs!),
          layernormStepMs8x64: round(b.trainStepMs!, 1),
        },
        node: node[t],
        ratios: {
          browserOverNodeWebPredict: ratio(b.predictMs!, n.predictMs1x32.onnxruntimeWeb),
          browserOverNodePredict: ratio(b.predictMs!, n.predictMs1x32.onnxruntimeNode),
          browserOverNodeOrtWebStep: ratio(b.trainStepMs!, n.layernormStepMs8x64.ortWebBackend),
          browserOverNativeStep: ratio(b.trainStepMs!, n.layernormStepMs8x64.nativeBackend),
        },
      };
    });
    const first = browser[threadCounts[0]!]!;
    return {
      model: 'bert-mini (random weights), two layernorm deltas',
      chromium: String(first.userAgent).match(/Chrome\/[\d.]+/)?.[0], crossOriginIsolated: first.crossOriginIsolated, cores: first.hardwareConcurrency,
      loadAverage: os.loadavg().map((x) => round(x, 2)),
      note: 'page: onnxruntime-web 1.19.2 training build in Web Workers (?threads=N); node: onnxruntime-node Predictor, onnxruntime-web wasm Predictor, ort-web training backend (the same ort artifacts), native backend (native artifacts, dropout 0.1; the ort ones have 0)',
      runs: rows,
    };
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}
