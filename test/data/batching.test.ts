import { describe, expect, it } from 'vitest';
import { collate, makeBatches, planEpoch, type Batch } from '../../src/data/batching.js';
import type { EncodedDataset } from '../../src/data/encoded.js';
import { ModtuneError } from '../../src/errors.js';
import { Rng } from '../../src/util/random.js';

/** A dataset whose example i has `lengths[i]` tokens: ids 1000·i + position, token type = position parity. */
function dataset(lengths: number[], labelKind: EncodedDataset['labelKind'] = 'class'): EncodedDataset {
  const offsets = new Uint32Array(lengths.length + 1);
  lengths.forEach((l, i) => (offsets[i + 1] = offsets[i]! + l));
  const total = offsets[lengths.length]!;
  const inputIds = new Int32Array(total);
  const tokenTypeIds = new Uint8Array(total);
  lengths.forEach((l, i) => {
    for (let t = 0; t < l; t++) {
      inputIds[offsets[i]! + t] = 1000 * i + t + 1;
      tokenTypeIds[offsets[i]! + t] = t % 2;
    }
  });
  return {
    size: lengths.length,
    ids: lengths.map((_, i) => `id${i}`),
    offsets, inputIds, tokenTypeIds,
    labels: labelKind === 'none' ? null : Float32Array.from(lengths, (_, i) => (labelKind === 'class' ? i % 3 : i / 4)),
    labelKind, padId: 0, maxLength: 128,
  };
}

const batchIndices = (batches: Batch[]) => batches.map((b) => b.indices);
const epoch = (loader: Iterable<Batch>) => [...loader];

describe('collate', () => {
  it('pads to the longest sequence of the batch and masks the padding', () => {
    const ds = dataset([3, 1, 2]);
    ds.padId = 7;
    const b = collate(ds, [0, 1, 2]);
    expect(b.batch).toBe(3);
    expect(b.seqLen).toBe(3);
    expect(Array.from(b.inputIds)).toEqual([1n, 2n, 3n, 1001n, 7n, 7n, 2001n, 2002n, 7n]);
    expect(Array.from(b.attentionMask)).toEqual([1n, 1n, 1n, 1n, 0n, 0n, 1n, 1n, 0n]);
    expect(Array.from(b.tokenTypeIds)).toEqual([0n, 1n, 0n, 0n, 0n, 0n, 0n, 1n, 0n]);
    expect(b.labels).toBeInstanceOf(BigInt64Array);
    expect(Array.from(b.labels as BigInt64Array)).toEqual([0n, 1n, 2n]);
    expect(b.ids).toEqual(['id0', 'id1', 'id2']);
    // A batch of short examples is short: padding is per batch, not to maxLength.
    expect(collate(ds, [1]).seqLen).toBe(1);
  });

  it('gives float labels for regression and none for test data', () => {
    const reg = collate(dataset([1, 1], 'score'), [1, 0]);
    expect(reg.labels).toBeInstanceOf(Float32Array);
    expect(Array.from(reg.labels as Float32Array)).toEqual([0.25, 0]);
    expect(collate(dataset([1, 1], 'none'), [0]).labels).toBeUndefined();
  });
});

describe('batch order', () => {
  const lengths = Array.from({ length: 103 }, (_, i) => 1 + ((i * 37) % 29));

  it('covers every example once per epoch, in order without shuffling', () => {
    const batches = epoch(makeBatches(dataset(lengths), { batchSize: 10 }));
    expect(batches).toHaveLength(11);
    expect(batchIndices(batches).flat()).toEqual(lengths.map((_, i) => i));
    expect(batches[10]!.batch).toBe(3);
    expect(batches.map((b) => b.step)).toEqual([...Array(11).keys()]);
    const dropped = epoch(makeBatches(dataset(lengths), { batchSize: 10, dropLast: true }));
    expect(dropped).toHaveLength(10);
    expect(dropped.every((b) => b.batch === 10)).toBe(true);
  });

  it('shuffles reproducibly per seed and differently per epoch', () => {
    const opts = { batchSize: 8, shuffle: true, seed: 42 };
    const a = makeBatches(dataset(lengths), opts);
    const b = makeBatches(dataset(lengths), opts);
    const a0 = batchIndices(epoch(a));
    const a1 = batchIndices(epoch(a));
    expect(batchIndices(epoch(b))).toEqual(a0);
    expect(a1).not.toEqual(a0);
    expect([...a0.flat()].sort((x, y) => x - y)).toEqual(lengths.map((_, i) => i));
    expect([...a1.flat()].sort((x, y) => x - y)).toEqual(lengths.map((_, i) => i));
    expect(a0.flat()).not.toEqual(lengths.map((_, i) => i));
    expect(batchIndices(epoch(makeBatches(dataset(lengths), { ...opts, seed: 43 })))).not.toEqual(a0);
  });

  it('groups by length: each batch sorted within its bucket, less padding, batch order shuffled', () => {
    const many = Array.from({ length: 400 }, (_, i) => 1 + ((i * 7919) % 97));
    const ds = dataset(many);
    const plain = epoch(makeBatches(ds, { batchSize: 8, shuffle: true, seed: 1 }));
    const grouped = epoch(makeBatches(ds, { batchSize: 8, shuffle: true, seed: 1, groupByLength: true, bucketSize: 80 }));
    const padding = (bs: Batch[]) => bs.reduce((s, b) => s + b.batch * b.seqLen, 0) - many.reduce((s, l) => s + l, 0);
    expect(padding(grouped)).toBeLessThan(padding(plain) / 3);
    expect([...batchIndices(grouped).flat()].sort((x, y) => x - y)).toEqual(many.map((_, i) => i));
    // Within a batch lengths do not increase (sorted longest first inside the bucket).
    for (const b of grouped) {
      const ls = b.indices.map((i) => many[i]!);
      expect(ls).toEqual([...ls].sort((x, y) => y - x));
    }
    // Batch order is shuffled: unshuffled, each run of 10 batches (one 80-example bucket) would go
    // from longest to shortest.
    const heads = grouped.map((b) => many[b.indices[0]!]!);
    const bucketByBucket = heads.every((l, i) => i % 10 === 0 || l <= heads[i - 1]!);
    expect(bucketByBucket).toBe(false);
    const ordered = epoch(makeBatches(ds, { batchSize: 8, groupByLength: true, bucketSize: 80 })).map((b) => many[b.indices[0]!]!);
    expect(ordered.every((l, i) => i % 10 === 0 || l <= ordered[i - 1]!)).toBe(true);
  });

  it('planEpoch only draws from the generator when shuffling', () => {
    const rng = new Rng(5);
    const before = rng.getState();
    planEpoch([3, 1, 2], { batchSize: 2 }, rng);
    expect(rng.getState()).toEqual(before);
    planEpoch([3, 1, 2], { batchSize: 2, shuffle: true }, rng);
    expect(rng.getState()).not.toEqual(before);
  });
});

describe('exact resume', () => {
  const lengths = Array.from({ length: 57 }, (_, i) => 1 + ((i * 13) % 11));
  const opts = { batchSize: 5, shuffle: true, seed: 7, groupByLength: true, bucketSize: 20 };

  it('continues with the very batches an uninterrupted run would have produced', () => {
    const ds = dataset(lengths);
    const straight = makeBatches(ds, opts);
    const reference = Array.from({ length: 40 }, () => straight.next());
    expect(reference[12]!.epoch).toBe(1); // 12 batches per epoch: this crossed an epoch boundary
    for (const stopAfter of [0, 5, 12, 17, 24, 31]) {
      const first = makeBatches(ds, opts);
      for (let i = 0; i < stopAfter; i++) first.next();
      const saved = JSON.parse(JSON.stringify(first.getState()));
      const resumed = makeBatches(ds, opts, saved);
      for (let i = stopAfter; i < 40; i++) {
        const b = resumed.next();
        expect({ epoch: b.epoch, step: b.step, indices: b.indices }).toEqual({ epoch: reference[i]!.epoch, step: reference[i]!.step, indices: reference[i]!.indices });
      }
    }
  });

  it('refuses a state taken on other data or batch size', () => {
    const state = makeBatches(dataset(lengths), opts).getState();
    expect(() => makeBatches(dataset(lengths.slice(1)), opts, state)).toThrow(/state is for 57 examples in batches of 5; this run has 56/);
    expect(() => makeBatches(dataset(lengths), { ...opts, batchSize: 4 }, state)).toThrow(ModtuneError);
    expect(() => makeBatches(dataset(lengths), opts, { ...state, position: 99 })).toThrow(/out of range/);
  });

  it('reports an empty epoch instead of looping', () => {
    expect(() => makeBatches(dataset([1, 2]), { batchSize: 4, dropLast: true }).next()).toThrow(/no batches/);
  });
});
