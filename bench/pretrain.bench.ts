/**
 * Pre-training speed (issue: a pretrained default §4). The masked-LM training step of `modtune
 * pretrain` on bert-mini at batch × 128 tokens, beside PyTorch doing the same step
 * (scripts/torch_mlm_bench.py, Debian python3-torch, 2 threads) right after it in this run; and the
 * corpus reader + tokenizer's throughput on a slice of the shared corpus, to show it is not the
 * bottleneck (it runs once per corpus; training reads the cached token ids).
 * Env: BENCH_STEPS=8  BENCH_THREADS=2  BENCH_TORCH=0 (skip PyTorch)  BENCH_PRETRAIN_BATCHES=32,64
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadTokenizer } from '../src/data/tokenizer.js';
import { loadOrBuildShard } from '../src/pretrain/shard.js';
import { ROOT, runWorker } from './child.js';

const PYTHON = process.env.BENCH_PYTHON ?? '/usr/bin/python3';
const SHARED = path.resolve(ROOT, '../shared');
const VOCAB = path.join(SHARED, 'tokenizers/bert-base-uncased/vocab.txt');

function torchStep(cfg: Record<string, number>): Record<string, number> | null {
  if (process.env.BENCH_TORCH === '0') return null;
  const env = { ...process.env, OMP_NUM_THREADS: String(cfg.threads), OPENBLAS_NUM_THREADS: String(cfg.threads), OMP_WAIT_POLICY: 'PASSIVE' };
  const r = spawnSync(PYTHON, [path.join(ROOT, 'scripts/torch_mlm_bench.py'), JSON.stringify(cfg)], { cwd: ROOT, env, encoding: 'utf8', timeout: 30 * 60_000 });
  if (r.status !== 0) {
    process.stderr.write(`bench: PyTorch MLM baseline unavailable (${(r.stderr || r.error?.message || '').trim().split('\n').pop()})\n`);
    return null;
  }
  return JSON.parse(r.stdout.trim().split('\n').pop()!);
}

export async function run(): Promise<object> {
  const steps = Number(process.env.BENCH_STEPS ?? '8');
  const threads = Number(process.env.BENCH_THREADS ?? '2');
  const batches = (process.env.BENCH_PRETRAIN_BATCHES ?? '32,64').split(',').map(Number);
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'modtune-bench-pretrain-'));
  try {
    // Corpus reader + tokenizer: two Wikipedia shards and ten books, read, tokenized and cached.
    const corpus = [...['wiki_000', 'wiki_001'].map((f) => path.join(SHARED, 'corpus/wiki', `${f}.txt.gz`)),
      ...fs.readdirSync(path.join(SHARED, 'corpus/books')).filter((f) => f.endsWith('.txt.gz')).sort().slice(0, 10).map((f) => path.join(SHARED, 'corpus/books', f))];
    const t0 = performance.now();
    const shard = await loadOrBuildShard({ corpus, tokenizer: loadTokenizer(VOCAB), cacheDir: path.join(work, 'cache') });
    const sec = (performance.now() - t0) / 1000;
    const tokens = shard.meta.tokens.train + shard.meta.tokens.heldOut;
    const bytes = corpus.reduce((s, f) => s + fs.statSync(f).size, 0);
    const reader = { files: corpus.length, compressedMB: +(bytes / 2 ** 20).toFixed(1), tokens, seconds: +sec.toFixed(1), tokensPerSec: Math.round(tokens / sec) };

    const step: Record<string, unknown> = {};
    for (const batch of batches) {
      const ours = runWorker<{ stepMsMedian: number; tokensPerSec: number; peakRssMB: number }>('mlm-step.ts', [VOCAB, String(batch), '128', String(steps), String(threads), '0.1', work]);
      const torch = torchStep({ batch, seq: 128, steps, threads, dropout: 0.1 });
      step[`${batch}x128`] = {
        modtune: { stepMsMedian: ours.stepMsMedian, tokensPerSec: ours.tokensPerSec, peakRssMB: ours.peakRssMB },
        pytorch: torch && { stepMsMedian: torch.stepMsMedian, tokensPerSec: torch.tokensPerSec, peakRssMB: torch.peakRssMB },
        speedupOverPytorch: torch ? +(ours.tokensPerSec / torch.tokensPerSec!).toFixed(2) : null,
        tokenizerOverStep: +(reader.tokensPerSec / ours.tokensPerSec).toFixed(1),
      };
      process.stderr.write(`bench: pretrain ${batch}x128 done\n`);
    }
    return { model: 'bert-mini', selection: 'full', dropout: 0.1, threads, steps, corpusReader: reader, mlmStep: step };
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}
