/**
 * `train --cache-frozen` at run time: the frozen prefix (embeddings and encoder layers below the
 * first trained one, see artifacts/native/frozen-prefix.ts) runs once over every training and dev
 * example; each example's hidden states, unpadded, are kept in memory, and batches carry them padded
 * in place of the token ids, so every step and evaluation starts at the first trained layer.
 *
 * The cache lives in memory only: a resumed run computes it again (one pass of the prefix), so no
 * stale cache can ever be read. Memory: 4 bytes × hidden size × the tokens of all cached examples.
 */
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { ModtuneError } from '../errors.js';
import type { Manifest, ModelSpec } from '../artifacts/manifest.js';
import { planFrozenPrefix } from '../artifacts/native/frozen-prefix.js';
import { collate } from '../data/batching.js';
import { exampleLength, type EncodedDataset } from '../data/encoded.js';
import { createSession } from './backends/native.js';
import { translateRunError } from './backends/ort-errors.js';
import type { Device } from './backends/types.js';

/** `layer 0` or `layers 0–k−1`: the encoder layers below layer k. */
export function layersBelow(layer: number): string {
  return layer === 1 ? 'layer 0' : `layers 0–${layer - 1}`;
}

/** Default `--cache-budget`, in MiB. */
export const DEFAULT_CACHE_BUDGET_MB = 2048;

const MIB = 1024 * 1024;

export interface FrozenCachePlan {
  /** The first encoder layer each step computes. */
  layer: number;
  hiddenSize: number;
  /** Bytes the cached hidden states take. */
  bytes: number;
  examples: number;
}

/** Tokens of a dataset (the cache holds one hidden vector per token). */
function tokens(ds: EncodedDataset): number {
  return ds.offsets[ds.size]! - ds.offsets[0]!;
}

/** Bytes of the hidden states of `datasets`: 4 × hidden × their tokens. */
export function frozenCacheBytes(hiddenSize: number, datasets: EncodedDataset[]): number {
  return 4 * hiddenSize * datasets.reduce((s, d) => s + tokens(d), 0);
}

/**
 * Whether an artifacts folder can train from cached hidden states with this selection: the
 * frozen-prefix models, or (null) a reason why there is nothing to cache. Artifacts that lack the
 * models although a frozen layer lies below the selection are an error (rebuild them).
 */
export function frozenPrefixOf(manifest: Manifest, dir: string): { layer: number } | { nothing: string } {
  const fp = manifest.native?.frozenPrefix;
  if (fp) return { layer: fp.layer };
  const plan = planFrozenPrefix(manifest.parameters, manifest.base.numLayers);
  if ('nothing' in plan) return plan;
  throw new ModtuneError(`--cache-frozen: the artifacts in ${dir} have no frozen-prefix models (manifest.json has no 'native.frozenPrefix'); rebuild them with modtune artifacts --cache-frozen, or train from the model`);
}

/**
 * Decide whether this run trains from cached hidden states; when it cannot, say why in one line and
 * return null (the run then computes every layer at every step, with the same results: the artifacts'
 * models run without dropout below the cut either way).
 */
export function planFrozenCache(
  manifest: Manifest,
  dir: string,
  datasets: EncodedDataset[],
  budgetMb: number,
  log: (line: string) => void,
): FrozenCachePlan | null {
  const where = frozenPrefixOf(manifest, dir);
  if ('nothing' in where) {
    log(`--cache-frozen: nothing to cache: ${where.nothing}; training without the cache`);
    return null;
  }
  const fp = manifest.native!.frozenPrefix!;
  const bytes = frozenCacheBytes(fp.hiddenSize, datasets);
  const examples = datasets.reduce((s, d) => s + d.size, 0);
  if (bytes > budgetMb * MIB) {
    log(`--cache-frozen: the hidden states entering layer ${fp.layer} need ${(bytes / MIB).toFixed(1)} MiB for ${examples} examples, more than --cache-budget ${budgetMb} MiB; training without the cache (same results, every step computes ${layersBelow(fp.layer)} again)`);
    return null;
  }
  return { layer: fp.layer, hiddenSize: fp.hiddenSize, bytes, examples };
}

/** Prefix runs over `examples` examples in batches of `batchSize`. */
export function prefixRuns(examples: number, batchSize: number): number {
  return Math.ceil(examples / batchSize);
}

/** Thrown when an abort signal stops the prefix pass between batches. */
export class FrozenCacheAbandoned extends Error {
  constructor() {
    super('frozen-layer cache abandoned');
    this.name = 'FrozenCacheAbandoned';
  }
}

export interface FrozenPassOptions {
  artifactsDir: string;
  manifest: Manifest;
  device: Device;
  threads?: number;
  /** Examples per prefix run. */
  batchSize: number;
  signal?: AbortSignal;
  /** Called after each prefix run (a batch of up to batchSize examples) with the runs done so far in the call. */
  onProgress?: (runs: number) => void;
}

/**
 * Run the frozen prefix over each dataset once and return the datasets with their `hiddenStates`.
 * Examples go through in order of length (little padding); each keeps only its own tokens' rows.
 */
export async function computeFrozenLayers(datasets: EncodedDataset[], o: FrozenPassOptions): Promise<EncodedDataset[]> {
  const fp = o.manifest.native?.frozenPrefix;
  if (!fp) throw new ModtuneError(`${o.artifactsDir}: no frozen-prefix models in these artifacts (manifest.json has no 'native.frozenPrefix')`);
  const file = path.join(o.artifactsDir, fp.prefix.file);
  const session = await createSession(file, o.device, o.threads);
  try {
    const out: EncodedDataset[] = [];
    let before = 0;
    for (const ds of datasets) {
      const rows = await runPrefix(session, fp.prefix, file, ds, fp.hiddenSize, { ...o, onProgress: (n) => o.onProgress?.(before + n) });
      out.push({ ...ds, hiddenStates: { width: fp.hiddenSize, rows } });
      before += prefixRuns(ds.size, o.batchSize);
    }
    return out;
  } finally {
    await session.release();
  }
}

async function runPrefix(session: ort.InferenceSession, spec: ModelSpec, file: string, ds: EncodedDataset, width: number, o: FrozenPassOptions): Promise<Float32Array[]> {
  const output = spec.outputs.find((x) => x.role === 'hidden_states');
  if (!output) throw new ModtuneError(`${file}: the manifest lists no 'hidden_states' output for the frozen prefix`);
  const order = Array.from({ length: ds.size }, (_, i) => i).sort((a, b) => exampleLength(ds, a) - exampleLength(ds, b) || a - b);
  const rows: Float32Array[] = new Array(ds.size);
  for (let start = 0; start < order.length; start += o.batchSize) {
    if (o.signal?.aborted) throw new FrozenCacheAbandoned();
    const batch = collate(ds, order.slice(start, start + o.batchSize));
    const dims = [batch.batch, batch.seqLen];
    const feeds: Record<string, ort.Tensor> = {};
    for (const input of spec.inputs) {
      const data = input.role === 'input_ids' ? batch.inputIds : input.role === 'attention_mask' ? batch.attentionMask : input.role === 'token_type_ids' ? batch.tokenTypeIds : undefined;
      if (!data) throw new ModtuneError(`${file}: input '${input.name}' has role '${input.role}'; the frozen prefix takes token inputs only`);
      feeds[input.name] = new ort.Tensor('int64', data, dims);
    }
    let result: ort.InferenceSession.ReturnType;
    try {
      result = await session.run(feeds);
    } catch (e) {
      throw translateRunError(e, { file, what: 'the frozen layers', batch: batch.batch, seqLen: batch.seqLen, batchSize: o.batchSize });
    }
    const h = result[output.name]?.data;
    if (!(h instanceof Float32Array) || h.length !== batch.batch * batch.seqLen * width) {
      throw new ModtuneError(`${file}: output '${output.name}' is not ${batch.batch} × ${batch.seqLen} × ${width} float32 values`);
    }
    batch.indices.forEach((example, row) => {
      const len = exampleLength(ds, example);
      // A copy: the batch's output buffer is freed once every example has its own rows.
      rows[example] = h.slice(row * batch.seqLen * width, (row * batch.seqLen + len) * width);
    });
    o.onProgress?.(start / o.batchSize + 1);
  }
  return rows;
}
