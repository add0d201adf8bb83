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
