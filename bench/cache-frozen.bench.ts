/**
 * Frozen layers computed once (`train --cache-frozen`): a whole `layernorm@last` run (3 epochs on
 * the first SST-2 training examples, dev scored after each epoch) with and without the cache, each
 * run in its own process, the two alternating so that both see the same machine load; medians and
 * the speed-up (uncached wall time ÷ cached wall time) from this one run. The cached run includes its
 * one pass of the frozen layers over every training and dev example.
 * Env: BENCH_CF_MODEL=bert-mini (a preset)  BENCH_CF_SELECTION=layernorm@last  BENCH_CF_LIMIT=4000
 *      BENCH_CF_EPOCHS=3  BENCH_CF_REPEATS=2  BENCH_THREADS=2  BENCH_CF_BATCH=32  BENCH_CF_DROPOUT=0.1
 *      BENCH_CF_LIMIT_EVAL (default: the whole dev split)  BENCH_CF_MAX_LENGTH=128
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { median, ROOT, runWorker } from './child.js';

const SHARED = path.resolve(ROOT, '../shared');
const VOCAB = path.join(SHARED, 'tokenizers/bert-base-uncased/vocab.txt');
const GLUE = path.join(SHARED, 'glue');

interface RunResult { wallSeconds: number; steps: number; examplesPerSec: number; finalMetrics: Record<string, number> | null; peakRssMB: number; cache: string | null }

export async function run(): Promise<object> {
  const preset = process.env.BENCH_CF_MODEL ?? 'bert-mini';
  const selection = process.env.BENCH_CF_SELECTION ?? 'layernorm@last';
  const repeats = Number(process.env.BENCH_CF_REPEATS ?? '2');
  const options = {
    train: selection, task: 'sst2', data: GLUE, tokenizer: VOCAB, cacheDir: false,
    epochs: Number(process.env.BENCH_CF_EPOCHS ?? '3'),
    limitTrain: Number(process.env.BENCH_CF_LIMIT ?? '4000'),
    ...(process.env.BENCH_CF_LIMIT_EVAL && { limitEval: Number(process.env.BENCH_CF_LIMIT_EVAL) }),
    batchSize: Number(process.env.BENCH_CF_BATCH ?? '32'),
    maxLength: Number(process.env.BENCH_CF_MAX_LENGTH ?? '128'),
    dropout: Number(process.env.BENCH_CF_DROPOUT ?? '0.1'),
    threads: Number(process.env.BENCH_THREADS ?? '2'),
  };
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'modtune-bench-cf-'));
  try {
    const model = path.join(work, `${preset}.onnx`);
    runWorker('build-model.ts', [preset, model]);
    const runs: Record<'uncached' | 'cached', RunResult[]> = { uncached: [], cached: [] };
    for (let i = 0; i < repeats; i++) {
      for (const variant of ['uncached', 'cached'] as const) {
        const out = path.join(work, `${variant}-${i}`);
        runs[variant].push(runWorker<RunResult>('train-run.ts', [JSON.stringify({ ...options, model, out, cacheFrozen: variant === 'cached' })]));
        fs.rmSync(out, { recursive: true, force: true });
        process.stderr.write(`bench: cache-frozen ${variant} ${i + 1}/${repeats} done\n`);
      }
    }
    const summary = (rs: RunResult[]) => ({
      wallSecondsMedian: +median(rs.map((r) => r.wallSeconds)).toFixed(2),
      wallSeconds: rs.map((r) => r.wallSeconds),
      examplesPerSecMedian: +median(rs.map((r) => r.examplesPerSec)).toFixed(1),
      peakRssMBMedian: median(rs.map((r) => r.peakRssMB)),
      steps: rs[0]!.steps,
      finalMetrics: rs.map((r) => r.finalMetrics),
    });
    const [u, c] = [summary(runs.uncached), summary(runs.cached)];
    const { data: _data, tokenizer: _tokenizer, cacheDir: _cacheDir, ...shown } = options;
    return {
      model: preset, ...shown, repeats, loadAverage: os.loadavg().map((x) => +x.toFixed(2)),
      uncached: u, cached: { ...c, cache: runs.cached[0]!.cache },
      speedup: +(u.wallSecondsMedian / c.wallSecondsMedian).toFixed(2),
      trainThroughputRatio: +(c.examplesPerSecMedian / u.examplesPerSecMedian).toFixed(2),
    };
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}
