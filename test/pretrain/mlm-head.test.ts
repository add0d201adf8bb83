import * as fs from 'node:fs';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { buildBert } from '../../src/bert/build.js';
import { encodeModel } from '../../src/onnx/io.js';
import { maskBatch, maskCount, type Vocabulary } from '../../src/pretrain/masking.js';
import { readModelFolder } from '../../src/pretrain/model-folder.js';
import { Rng } from '../../src/util/random.js';
import { ROOT } from '../helpers/paths.js';

interface Reference {
  input_ids: number[][];
  attention_mask: number[][];
  token_type_ids: number[][];
  positions: Array<{ row: number; position: number; first64: number[]; top: Array<{ id: number; logit: number }>; logsumexp: number }>;
}

/** Our builder's masked-LM logits for a model folder against the PyTorch reference beside it (scripts/torch_mlm_reference.py). */
export async function compareWithTorch(folder: string, tolerance: number): Promise<number> {
  const ref = JSON.parse(fs.readFileSync(path.join(folder, 'mlm-reference.json'), 'utf8')) as Reference;
  const { config, weights } = readModelFolder(folder);
  const [B, S] = [ref.input_ids.length, ref.input_ids[0]!.length];
  const ids = (rows: number[][]) => new ort.Tensor('int64', BigInt64Array.from(rows.flat(), BigInt), [B, S]);
  const feeds = { input_ids: ids(ref.input_ids), attention_mask: ids(ref.attention_mask), token_type_ids: ids(ref.token_type_ids) };
  let worst = 0;
  const check = (row: Float32Array, r: Reference['positions'][number]) => {
    r.first64.forEach((v, j) => (worst = Math.max(worst, Math.abs(row[j]! - v))));
    r.top.forEach((t) => (worst = Math.max(worst, Math.abs(row[t.id]! - t.logit))));
    let max = -Infinity;
    for (const v of row) max = Math.max(max, v);
    let sum = 0;
    for (const v of row) sum += Math.exp(v - max);
    worst = Math.max(worst, Math.abs(max + Math.log(sum) - r.logsumexp));
    expect(Array.from(row).map((v, i) => [v, i]).sort((a, b) => b[0]! - a[0]!)[0]![1]).toBe(r.top[0]!.id);
  };

  // Every position ('all'), then only the gathered positions ('masked', as pre-training runs it).
  const all = await ort.InferenceSession.create(encodeModel(buildBert({ config, weights, mlmHead: 'all', pooler: false })));
  const logits = (await all.run(feeds)).logits!.data as Float32Array;
  const V = config.vocabSize;
  for (const r of ref.positions) check(logits.subarray((r.row * S + r.position) * V, (r.row * S + r.position + 1) * V), r);
  await all.release();

  const masked = await ort.InferenceSession.create(encodeModel(buildBert({ config, weights, mlmHead: 'masked', pooler: false })));
  const positions = BigInt64Array.from(ref.positions, (r) => BigInt(r.row * S + r.position));
  const gathered = (await masked.run({ ...feeds, masked_positions: new ort.Tensor('int64', positions, [positions.length]) })).logits!.data as Float32Array;
  ref.positions.forEach((r, i) => check(gathered.subarray(i * V, (i + 1) * V), r));
  await masked.release();
  expect(worst).toBeLessThan(tolerance);
  return worst;
}

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
