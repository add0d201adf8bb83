import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { maskBatch, maskCount, type Vocabulary } from '../../src/pretrain/masking.js';
import { Rng } from '../../src/util/random.js';
import { ROOT } from '../helpers/paths.js';
import { compareWithTorch } from './torch-reference.js';

describe('masked-LM head', () => {
  it('gives the logits of a PyTorch BertForMaskedLM (tied decoder) on the same weights, over all or gathered positions', async () => {
    await compareWithTorch(path.join(ROOT, 'test/fixtures/torch/mlm-tiny'), 1e-4);
  });
});

describe('masking', () => {
  const vocab: Vocabulary = {
    size: 1000, clsId: 2, sepId: 3, padId: 0, maskId: 4,
    special: new Set([0, 1, 2, 3, 4]),
    continuation: Uint8Array.from({ length: 1000 }, (_, i) => (i >= 500 ? 1 : 0)),
  };

  it('predicts round(rate × tokens) non-special tokens a sequence, 80% [MASK], 10% random, 10% kept', () => {
    const rng = new Rng(3);
    const seqLen = 130;
    let masked = 0, randomised = 0, kept = 0, total = 0;
    for (let trial = 0; trial < 200; trial++) {
      const block = Array.from({ length: seqLen - 2 }, (_, i) => (i === 40 ? 3 : 10 + Math.floor(rng.next() * 490)));
      const b = maskBatch([block, block], vocab, { rate: 0.15, wholeWord: false }, rng);
      expect(b.seqLen).toBe(seqLen);
      const pos = Array.from(b.maskedPositions!, Number);
      expect(pos).toHaveLength(2 * maskCount(seqLen - 3, 0.15));
      pos.forEach((p, i) => {
        const col = p % seqLen;
        expect(col).not.toBe(0);
        expect(col).not.toBe(seqLen - 1);
        expect(col).not.toBe(41); // the [SEP] inside the block
        const original = Number(b.labels![i]);
        expect(original).toBe(block[col - 1]);
        const now = Number(b.inputIds[p]);
        if (now === vocab.maskId) masked++;
        else if (now === original) kept++;
        else randomised++;
        expect(vocab.special.has(now) && now !== vocab.maskId).toBe(false);
        total++;
      });
    }
    // 7,600 draws: each share within ±2 points of BERT's.
    expect(masked / total).toBeGreaterThan(0.78);
    expect(masked / total).toBeLessThan(0.82);
    expect(randomised / total).toBeGreaterThan(0.08);
    expect(kept / total).toBeGreaterThan(0.08);
  });

  it('masks whole words together with --whole-word', () => {
    // Words: a start piece (< 500) followed by two continuations (≥ 500).
    const block = Array.from({ length: 60 }, (_, i) => (i % 3 === 0 ? 100 + i : 600 + i));
    const b = maskBatch([block], vocab, { rate: 0.3, wholeWord: true }, new Rng(9));
    const cols = Array.from(b.maskedPositions!, (p) => Number(p) - 1);
    expect(cols.length % 3).toBe(0);
    for (const c of cols) expect(cols).toContain(c - (c % 3));
  });

  it('draws different masks for the same sequences at different updates, the same at the same update', () => {
    const block = Array.from({ length: 62 }, (_, i) => 10 + i);
    const at = (seed: number) => Array.from(maskBatch([block], vocab, { rate: 0.15, wholeWord: false }, new Rng(seed)).maskedPositions!);
    expect(at(5)).toEqual(at(5));
    expect(at(5)).not.toEqual(at(6));
  });
});
