/**
 * One SST-2 training epoch of bert-mini (all 67,349 examples, `full`, batch 32, dynamic padding to
 * each batch's longest example) with and without `--group-by-length`: a whole `train` run each, in
 * its own process and environment as the CLI runs it (huge-page malloc where glibc has it), and
 * PyTorch (scripts/torch_sst2_epoch.py) running the very same batches, each example's length taken
 * from our batch plan, so that both do the same padding. Reported: examples/s of the training loop
 * (batching and steps; ours also as the whole command's wall time, with artifact generation,
 * tokenization and the dev evaluation), the padding share, peak RSS, and the speed ratios.
 * Env: BENCH_EPOCH_LIMIT (first n training examples; default all)  BENCH_THREADS=2  BENCH_TORCH=0
 *      BENCH_TORCH_MALLOC=both (PyTorch with and without huge pages, the faster counts) | huge | default
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { fasterMalloc, ROOT, runWorker, TOOL_ENV } from './child.js';

const SHARED = path.resolve(ROOT, '../shared');
const VOCAB = path.join(SHARED, 'tokenizers/bert-base-uncased/vocab.txt');
const GLUE = path.join(SHARED, 'glue');
const PYTHON = process.env.BENCH_PYTHON ?? '/usr/bin/python3';

interface RunResult { wallSeconds: number; steps: number; examplesPerSec: number; paddingShare: number; peakRssMB: number; finalMetrics: Record<string, number> | null }
interface TorchResult { wallSeconds: number; examplesPerSec: number; paddingShare: number; peakRssMB: number; batches: number }

function torchEpoch(planFile: string, threads: number, malloc: Record<string, string>): TorchResult | null {
  if (process.env.BENCH_TORCH === '0') return null;
  const env = { ...process.env, OMP_NUM_THREADS: String(threads), OPENBLAS_NUM_THREADS: String(threads), OMP_WAIT_POLICY: 'PASSIVE', ...malloc };
  const r = spawnSync(PYTHON, [path.join(ROOT, 'scripts/torch_sst2_epoch.py'), planFile], { cwd: ROOT, env, encoding: 'utf8', timeout: 60 * 60_000 });
  if (r.status !== 0) {
    process.stderr.write(`bench: PyTorch epoch unavailable (${(r.stderr || r.error?.message || '').trim().split('\n').pop()})\n`);
    return null;
  }
  return JSON.parse(r.stdout.trim().split('\n').pop()!);
}

export async function run(): Promise<object> {
  const threads = Number(process.env.BENCH_THREADS ?? '2');
  const options = {
    train: 'full', task: 'sst2', data: GLUE, tokenizer: VOCAB, cacheDir: false, epochs: 1, batchSize: 32, maxLength: 128,
    dropout: 0.1, lr: 2e-5, seed: 42, threads, limitEval: 872,
    ...(process.env.BENCH_EPOCH_LIMIT && { limitTrain: Number(process.env.BENCH_EPOCH_LIMIT) }),
  };
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'modtune-bench-epoch-'));
  try {
    const model = path.join(work, 'bert-mini.onnx');
    runWorker('build-model.ts', ['bert-mini', model]);
    const variants: Record<string, unknown> = {};
    for (const group of [false, true]) {
      const name = group ? 'groupByLength' : 'plain';
      const plan = path.join(work, `${name}.json`);
      const planned = runWorker<{ batches: number; examples: number; paddingShare: number }>('batch-plan.ts', [
        GLUE, VOCAB, String(options.batchSize), String(options.seed), group ? '1' : '0', String(options.maxLength), plan,
        ...(options.limitTrain ? [String(options.limitTrain)] : []),
      ]);
      const out = path.join(work, `run-${name}`);
      const ours = runWorker<RunResult>('train-run.ts', [JSON.stringify({ ...options, model, out, groupByLength: group })], 60 * 60_000, TOOL_ENV);
      fs.rmSync(out, { recursive: true, force: true });
      process.stderr.write(`bench: sst2-epoch ${name} ours done (${ours.examplesPerSec} examples/s)\n`);
      // PyTorch with glibc's default malloc and with huge pages; the faster run counts.
      const best = fasterMalloc((env) => torchEpoch(plan, threads, env), (r) => r.wallSeconds, process.env.BENCH_TORCH_MALLOC);
      const torch = best?.result ?? null;
      variants[name] = {
        batches: planned.batches,
        ours: { ...ours, commandExamplesPerSec: +(planned.examples / ours.wallSeconds).toFixed(1) },
        pytorch: torch && { ...torch, malloc: best!.malloc, otherMallocExamplesPerSec: best!.other?.examplesPerSec ?? null },
        planPaddingShare: planned.paddingShare,
        speedupOverPytorch: torch ? +(ours.examplesPerSec / torch.examplesPerSec).toFixed(2) : null,
      };
      process.stderr.write(`bench: sst2-epoch ${name} done\n`);
    }
    const v = variants as Record<string, { ours: RunResult; pytorch: TorchResult | null }>;
    const { data: _data, tokenizer: _tokenizer, cacheDir: _cacheDir, ...shown } = options;
    return {
      model: 'bert-mini', ...shown, malloc: TOOL_ENV.GLIBC_TUNABLES || 'default', loadAverage: os.loadavg().map((x) => +x.toFixed(2)),
      variants,
      groupByLengthSpeedup: {
        ours: +(v.groupByLength!.ours.examplesPerSec / v.plain!.ours.examplesPerSec).toFixed(2),
        pytorch: v.plain!.pytorch && v.groupByLength!.pytorch ? +(v.groupByLength!.pytorch.examplesPerSec / v.plain!.pytorch.examplesPerSec).toFixed(2) : null,
      },
    };
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}
