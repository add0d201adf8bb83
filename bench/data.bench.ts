/**
 * GLUE data pipeline on SST-2 train (67,349 sentences) and MRPC train (3,668 pairs), max length 128:
 * reading the TSV, tokenizing (cache miss) vs loading the tokenized cache (hit), and batching one
 * epoch with and without length grouping (padding share). Medians of 3 for the fast steps; the
 * tokenization itself runs once per split (it is the slow part the cache exists to skip).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeBatches } from '../src/data/batching.js';
import { readGlueSplit } from '../src/data/glue-reader.js';
import { loadEncodedSplit } from '../src/data/tokenized-cache.js';
import { loadTokenizer } from '../src/data/tokenizer.js';

const SHARED = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../shared');
const GLUE = path.join(SHARED, 'glue');
const VOCAB = path.join(SHARED, 'tokenizers/bert-base-uncased/vocab.txt');

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
function time<T>(f: () => T): [T, number] {
  const t0 = performance.now();
  const out = f();
  return [out, performance.now() - t0];
}

export async function run(): Promise<object> {
  const cacheDir = fs.mkdtempSync(path.join(os.tmpdir(), 'modtune-bench-data-'));
  const [tokenizer, loadTokenizerMs] = time(() => loadTokenizer(VOCAB));
  const results: Record<string, unknown> = { loadTokenizerMs: Math.round(loadTokenizerMs) };
  try {
    for (const [task, split] of [['SST-2', 'train'], ['MRPC', 'train']] as const) {
      const readMs = median([0, 1, 2].map(() => time(() => readGlueSplit(task, split, GLUE))[1]));
      const [miss, missMs] = time(() => loadEncodedSplit({ task, split, dir: GLUE, tokenizer, maxLength: 128, cacheDir }));
      const hitMs = median([0, 1, 2].map(() => {
        const [hit, ms] = time(() => loadEncodedSplit({ task, split, dir: GLUE, tokenizer, maxLength: 128, cacheDir }));
        if (!hit.cacheHit) throw new Error('expected a cache hit');
        return ms;
      }));
      const ds = miss.dataset;
      const realTokens = ds.inputIds.length;
      const epoch = (groupByLength: boolean) => {
        let padded = 0;
        const [, ms] = time(() => {
          for (const b of makeBatches(ds, { batchSize: 32, shuffle: true, seed: 1, groupByLength })) padded += b.batch * b.seqLen;
        });
        return { ms: Math.round(ms), paddingShare: +(1 - realTokens / padded).toFixed(3) };
      };
      results[`${task} ${split}`] = {
        examples: ds.size,
        tokens: realTokens,
        readTsvMs: Math.round(readMs),
        tokenizeMissMs: Math.round(missMs),
        cacheHitMs: Math.round(hitMs),
        hitSpeedup: +(missMs / hitMs).toFixed(1),
        epochBatchSize32: epoch(false),
        epochBatchSize32GroupedByLength: epoch(true),
      };
    }
  } finally {
    fs.rmSync(cacheDir, { recursive: true, force: true });
  }
  return results;
}
