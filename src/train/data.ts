import { createHash } from 'node:crypto';
import { ModtuneError } from '../errors.js';
import { encodeExamples, type EncodedDataset } from '../data/encoded.js';
import { readGlueSplit } from '../data/glue-reader.js';
import type { GlueTask } from '../data/glue-tasks.js';
import { loadEncodedSplit } from '../data/tokenized-cache.js';
import type { BertTokenizer } from '../data/tokenizer.js';

export interface SplitLoadOptions {
  dir: string;
  tokenizer: BertTokenizer;
  maxLength: number;
  /** Only the first N examples (tokenized directly, without the cache). */
  limit?: number | null;
  cacheDir?: string | false;
}

/**
 * sha256 of a tokenized set: its token ids, token types, example boundaries and labels, i.e.
 * exactly what training sees (the same text tokenized by another vocabulary differs).
 */
export function datasetSha256(ds: EncodedDataset): string {
  const h = createHash('sha256');
  h.update(JSON.stringify({ size: ds.size, labelKind: ds.labelKind, padId: ds.padId, maxLength: ds.maxLength }));
  for (const a of [ds.offsets, ds.inputIds, ds.tokenTypeIds, ds.labels ?? new Float32Array(0)]) h.update(new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
  return h.digest('hex');
}

/** The hashes a run records of its data (see `RunConfig.dataSha256`). */
export function dataHashes(trainSet: EncodedDataset, devSets: Array<{ split: string; dataset: EncodedDataset }>): { train: string; dev: Record<string, string> } {
  return { train: datasetSha256(trainSet), dev: Object.fromEntries(devSets.map((d) => [d.split, datasetSha256(d.dataset)])) };
}

/** One split of a GLUE task, tokenized; the whole split goes through the on-disk cache. */
export function loadTaskSplit(task: GlueTask, split: string, opts: SplitLoadOptions): EncodedDataset {
  let ds: EncodedDataset;
  if (opts.limit) {
    const { examples } = readGlueSplit(task, split, opts.dir);
    ds = encodeExamples(opts.tokenizer, examples.slice(0, opts.limit), opts.maxLength, { regression: task.regression });
  } else {
    ds = loadEncodedSplit({ task, split, dir: opts.dir, tokenizer: opts.tokenizer, maxLength: opts.maxLength, cacheDir: opts.cacheDir }).dataset;
  }
  if (ds.size === 0) throw new ModtuneError(`${task.name} ${split}: no examples in ${opts.dir}`);
  return ds;
}
