import { ModtuneError } from '../errors.js';
import type { GlueExample } from './glue-reader.js';
import type { BertTokenizer } from './tokenizer.js';

/**
 * A tokenized split in flat arrays (compact in memory and on disk): example i's tokens are
 * `inputIds[offsets[i] .. offsets[i+1])`, framed with [CLS]/[SEP] and already truncated.
 */
export interface EncodedDataset {
  size: number;
  ids: string[];
  offsets: Uint32Array;
  inputIds: Int32Array;
  tokenTypeIds: Uint8Array;
  /** Class indices (`labelKind: 'class'`) or scores (`'score'`); null for unlabelled (test) data. */
  labels: Float32Array | null;
  labelKind: 'class' | 'score' | 'none';
  padId: number;
  maxLength: number;
  /**
   * Per-example float rows that stand in for the tokens: example i's is [length_i × width] (the
   * hidden states entering the first trained encoder layer, `train --cache-frozen`). Batches then
   * carry them padded with zeros.
   */
  hiddenStates?: { width: number; rows: Float32Array[] };
}

export function exampleLength(ds: EncodedDataset, i: number): number {
  return ds.offsets[i + 1]! - ds.offsets[i]!;
}

/** Tokenize examples into an EncodedDataset. `regression` makes labels scores instead of classes. */
export function encodeExamples(
  tokenizer: BertTokenizer,
  examples: ReadonlyArray<GlueExample>,
  maxLength: number,
  opts: { regression?: boolean; onProgress?: (done: number, total: number) => void } = {},
): EncodedDataset {
  const size = examples.length;
  const labelled = examples.filter((e) => e.label !== undefined).length;
  if (labelled !== 0 && labelled !== size) {
    throw new ModtuneError(`${size - labelled} of ${size} examples have no label; expected all or none labelled`);
  }
  const offsets = new Uint32Array(size + 1);
  const chunks: number[][] = new Array(size);
  const types: number[][] = new Array(size);
  let total = 0;
  const every = Math.max(1, Math.floor(size / 100));
  for (let i = 0; i < size; i++) {
    const e = examples[i]!;
    const enc = tokenizer.encode(e.textA, e.textB, maxLength);
    chunks[i] = enc.inputIds;
    types[i] = enc.tokenTypeIds;
    total += enc.inputIds.length;
    offsets[i + 1] = total;
    if (opts.onProgress && (i + 1) % every === 0) opts.onProgress(i + 1, size);
  }
  const inputIds = new Int32Array(total);
  const tokenTypeIds = new Uint8Array(total);
  for (let i = 0; i < size; i++) {
    inputIds.set(chunks[i]!, offsets[i]!);
    tokenTypeIds.set(types[i]!, offsets[i]!);
  }
  let labels: Float32Array | null = null;
  if (labelled > 0) {
    labels = new Float32Array(size);
    for (let i = 0; i < size; i++) labels[i] = examples[i]!.label!;
  }
  opts.onProgress?.(size, size);
  return {
    size,
    ids: examples.map((e) => e.id),
    offsets,
    inputIds,
    tokenTypeIds,
    labels,
    labelKind: labels ? (opts.regression ? 'score' : 'class') : 'none',
    padId: tokenizer.padId,
    maxLength,
  };
}
