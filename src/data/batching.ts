import { ModtuneError } from '../errors.js';
import { Rng } from '../util/random.js';
import { exampleLength, type EncodedDataset } from './encoded.js';

/** Model inputs for one batch, padded to its longest sequence (row-major [batch, seqLen]). */
export interface Batch {
  inputIds: BigInt64Array;
  attentionMask: BigInt64Array;
  tokenTypeIds: BigInt64Array;
  /** int64 class indices, or float scores for regression; absent for unlabelled data. */
  labels?: BigInt64Array | Float32Array;
  /** Masked-LM batches: flat indices (row × seqLen + column) of the masked tokens; `labels` holds their original ids. */
  maskedPositions?: BigInt64Array;
  /** From a dataset with `hiddenStates`: row-major [batch, seqLen, width], zeros past each example's length. */
  hiddenStates?: Float32Array;
  batch: number;
  seqLen: number;
  /** Example ids (for predictions and submission files) and their positions in the dataset. */
  ids: string[];
  indices: number[];
  /** Which epoch the batch belongs to and its place in that epoch (0-based). */
  epoch: number;
  step: number;
}

export interface BatchOptions {
  batchSize: number;
  shuffle?: boolean;
  seed?: number;
  /** Put examples of similar length together (less padding): sort within buckets, then shuffle batches. */
  groupByLength?: boolean;
  /** Examples per length-sorting bucket; default 50 × batchSize (rounded up to whole batches). */
  bucketSize?: number;
  /** Drop the incomplete batch at the end of each epoch. */
  dropLast?: boolean;
}

/**
 * Where the data order stands, enough to continue exactly where a run stopped: the epoch, how many
 * of its batches were consumed, and the random generator's state at the start of that epoch (the
 * epoch's order is re-derived from it). `size`/`batchSize` guard against resuming on other data.
 */
export interface DataOrderState {
  epoch: number;
  position: number;
  rng: number[];
  size: number;
  batchSize: number;
}

/**
 * The batches of one epoch as lists of dataset positions. Consumes `rng` only when shuffling, so the
 * generator's state after the call is the next epoch's starting state.
 */
export function planEpoch(lengths: ArrayLike<number>, opts: BatchOptions, rng: Rng): number[][] {
  const n = lengths.length;
  const bs = opts.batchSize;
  const order = Array.from({ length: n }, (_, i) => i);
  if (opts.shuffle) rng.shuffle(order);
  let batches: number[][] = [];
  if (opts.groupByLength) {
    const bucket = Math.max(bs, Math.ceil((opts.bucketSize ?? 50 * bs) / bs) * bs);
    for (let start = 0; start < n; start += bucket) {
      // Longest first within the bucket; equal lengths keep their (shuffled) order.
      const chunk = order.slice(start, start + bucket).sort((a, b) => lengths[b]! - lengths[a]! || 0);
      for (let i = 0; i < chunk.length; i += bs) batches.push(chunk.slice(i, i + bs));
    }
  } else {
    for (let i = 0; i < n; i += bs) batches.push(order.slice(i, i + bs));
  }
  if (opts.dropLast) batches = batches.filter((b) => b.length === bs);
  if (opts.shuffle && opts.groupByLength) rng.shuffle(batches);
  return batches;
}

/** Pad the examples at `indices` to their longest sequence and pack them as int64 model inputs. */
export function collate(ds: EncodedDataset, indices: number[]): Omit<Batch, 'epoch' | 'step'> {
  const batch = indices.length;
  let seqLen = 0;
  for (const i of indices) seqLen = Math.max(seqLen, exampleLength(ds, i));
  const inputIds = new BigInt64Array(batch * seqLen).fill(BigInt(ds.padId));
  const attentionMask = new BigInt64Array(batch * seqLen);
  const tokenTypeIds = new BigInt64Array(batch * seqLen);
  indices.forEach((example, row) => {
    const start = ds.offsets[example]!;
    const len = ds.offsets[example + 1]! - start;
    const base = row * seqLen;
    for (let t = 0; t < len; t++) {
      inputIds[base + t] = BigInt(ds.inputIds[start + t]!);
      attentionMask[base + t] = 1n;
      tokenTypeIds[base + t] = BigInt(ds.tokenTypeIds[start + t]!);
    }
  });
  const out: Omit<Batch, 'epoch' | 'step'> = {
    inputIds, attentionMask, tokenTypeIds, batch, seqLen,
    ids: indices.map((i) => ds.ids[i]!),
    indices: [...indices],
  };
  if (ds.hiddenStates) out.hiddenStates = collateRows(ds, ds.hiddenStates, indices, seqLen);
  if (ds.labels && ds.labelKind === 'class') out.labels = BigInt64Array.from(indices, (i) => BigInt(Math.round(ds.labels![i]!)));
  else if (ds.labels && ds.labelKind === 'score') out.labels = Float32Array.from(indices, (i) => ds.labels![i]!);
  return out;
}

/** Per-example [length × width] rows padded with zeros into one [batch, seqLen, width] array. */
function collateRows(ds: EncodedDataset, states: NonNullable<EncodedDataset['hiddenStates']>, indices: number[], seqLen: number): Float32Array {
  const { width, rows } = states;
  const out = new Float32Array(indices.length * seqLen * width);
  indices.forEach((example, row) => {
    const r = rows[example];
    const len = exampleLength(ds, example);
    if (!r || r.length !== len * width) throw new ModtuneError(`hidden states of example ${example}: expected ${len} × ${width} values, got ${r ? r.length : 'none'}`);
    out.set(r, row * seqLen * width);
  });
  return out;
}

/**
 * Batches over a dataset, epoch after epoch, in a seeded order that `getState()`/a saved state
 * reproduce exactly. Iterating the loader (`for (const b of loader)`) yields the rest of the current
 * epoch; `next()` keeps going across epochs.
 */
export class BatchLoader implements Iterable<Batch> {
  readonly batchesPerEpoch: number;
  private readonly lengths: Uint32Array;
  private epoch: number;
  private position: number;
  private epochStart: number[];
  private plan: number[][];
  private nextEpochRng: Rng;

  constructor(private readonly ds: EncodedDataset, private readonly opts: BatchOptions, state?: DataOrderState) {
    if (!Number.isInteger(opts.batchSize) || opts.batchSize < 1) throw new ModtuneError(`batch size must be a positive integer, got ${opts.batchSize}`);
    this.lengths = new Uint32Array(ds.size);
    for (let i = 0; i < ds.size; i++) this.lengths[i] = exampleLength(ds, i);
    this.batchesPerEpoch = opts.dropLast ? Math.floor(ds.size / opts.batchSize) : Math.ceil(ds.size / opts.batchSize);
    if (state) {
      if (state.size !== ds.size || state.batchSize !== opts.batchSize) {
        throw new ModtuneError(`data order state is for ${state.size} examples in batches of ${state.batchSize}; this run has ${ds.size} in batches of ${opts.batchSize}`);
      }
      if (!Number.isInteger(state.epoch) || state.epoch < 0 || !Number.isInteger(state.position) || state.position < 0 || state.position > this.batchesPerEpoch) {
        throw new ModtuneError(`data order state: epoch ${state.epoch}, position ${state.position} out of range (${this.batchesPerEpoch} batches per epoch)`);
      }
      this.epoch = state.epoch;
      this.position = state.position;
      this.epochStart = [...state.rng];
    } else {
      this.epoch = 0;
      this.position = 0;
      this.epochStart = new Rng(opts.seed ?? 0).getState();
    }
    const rng = Rng.fromState(this.epochStart);
    this.plan = planEpoch(this.lengths, opts, rng);
    this.nextEpochRng = rng;
  }

  /** The state after the last batch handed out; pass it to `makeBatches` to continue from there. */
  getState(): DataOrderState {
    return { epoch: this.epoch, position: this.position, rng: [...this.epochStart], size: this.ds.size, batchSize: this.opts.batchSize };
  }

  get currentEpoch(): number {
    return this.epoch;
  }

  /** The next batch, starting the next epoch (with a fresh order) when the current one is used up. */
  next(): Batch {
    if (this.batchesPerEpoch === 0) {
      throw new ModtuneError(`no batches: ${this.ds.size} examples with batch size ${this.opts.batchSize}${this.opts.dropLast ? ' and dropLast' : ''}`);
    }
    if (this.position >= this.plan.length) this.startNextEpoch();
    const step = this.position++;
    return { ...collate(this.ds, this.plan[step]!), epoch: this.epoch, step };
  }

  /** The remaining batches of the current epoch (of the next one if the current is used up). */
  *[Symbol.iterator](): Iterator<Batch> {
    if (this.position >= this.plan.length && this.batchesPerEpoch > 0) this.startNextEpoch();
    const epoch = this.epoch;
    while (this.epoch === epoch && this.position < this.plan.length) yield this.next();
  }

  private startNextEpoch(): void {
    this.epoch++;
    this.position = 0;
    this.epochStart = this.nextEpochRng.getState();
    const rng = Rng.fromState(this.epochStart);
    this.plan = planEpoch(this.lengths, this.opts, rng);
    this.nextEpochRng = rng;
  }
}

/** Batches over `encoded` (see BatchLoader); with `state`, continue exactly where that state was taken. */
export function makeBatches(encoded: EncodedDataset, opts: BatchOptions, state?: DataOrderState): BatchLoader {
  return new BatchLoader(encoded, opts, state);
}
