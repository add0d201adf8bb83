/**
 * BERT's masked-LM inputs: sequences cut from the token stream and framed `[CLS] … [SEP]`, a share of
 * their tokens chosen for prediction; of those, 80% become `[MASK]`, 10% a random token, 10% stay.
 * Masks are dynamic (RoBERTa): drawn anew from a generator seeded by the update, so a sequence seen
 * twice is masked differently, and a resumed run draws exactly the masks an uninterrupted one would.
 */
import { ModtuneError } from '../errors.js';
import type { Batch } from '../data/batching.js';
import { Rng } from '../util/random.js';

export interface MaskingOptions {
  /** Share of the (non-special) tokens of a sequence to predict. */
  rate: number;
  /** Choose whole words (a word piece and its `##` continuations) rather than single pieces. */
  wholeWord: boolean;
}

export interface Vocabulary {
  size: number;
  clsId: number;
  sepId: number;
  padId: number;
  maskId: number;
  /** Ids never chosen for prediction nor drawn as random replacements (`[PAD]`, `[CLS]`, …). */
  special: Set<number>;
  /** True for ids of `##` continuation pieces (whole-word masking). */
  continuation: Uint8Array;
}

/** How many tokens of a sequence with `candidates` maskable tokens are predicted: round(rate × n), at least 1. */
export function maskCount(candidates: number, rate: number): number {
  return Math.max(1, Math.round(candidates * rate));
}

/**
 * A batch of masked sequences. `blocks[i]` are the content tokens of sequence i (seqLen − 2 of them);
 * the batch holds `[CLS] block [SEP]` rows with their masked-LM positions and labels.
 */
export function maskBatch(blocks: ArrayLike<number>[], vocab: Vocabulary, opts: MaskingOptions, rng: Rng): Batch {
  const rows = blocks.length;
  const seqLen = blocks[0]!.length + 2;
  const inputIds = new BigInt64Array(rows * seqLen);
  const positions: number[] = [];
  const labels: number[] = [];
  for (let r = 0; r < rows; r++) {
    const block = blocks[r]!;
    if (block.length !== seqLen - 2) throw new ModtuneError(`internal: block ${r} has ${block.length} tokens, expected ${seqLen - 2}`);
    const row = new Array<number>(seqLen);
    row[0] = vocab.clsId;
    for (let i = 0; i < block.length; i++) row[i + 1] = block[i]!;
    row[seqLen - 1] = vocab.sepId;
    const chosen = choosePositions(row, vocab, opts, rng);
    for (const pos of chosen) {
      positions.push(r * seqLen + pos);
      labels.push(row[pos]!);
      const u = rng.next();
      if (u < 0.8) row[pos] = vocab.maskId;
      else if (u < 0.9) row[pos] = randomToken(vocab, rng);
    }
    for (let i = 0; i < seqLen; i++) inputIds[r * seqLen + i] = BigInt(row[i]!);
  }
  return {
    inputIds,
    attentionMask: new BigInt64Array(rows * seqLen).fill(1n),
    tokenTypeIds: new BigInt64Array(rows * seqLen),
    labels: BigInt64Array.from(labels, (v) => BigInt(v)),
    maskedPositions: BigInt64Array.from(positions, (v) => BigInt(v)),
    batch: rows,
    seqLen,
    ids: [],
    indices: [],
    epoch: 0,
    step: 0,
  };
}

/** Positions (ascending) of one framed sequence chosen for prediction. */
function choosePositions(row: number[], vocab: Vocabulary, opts: MaskingOptions, rng: Rng): number[] {
  // Words: runs of a piece and its continuations; without whole-word masking every piece is a word.
  const words: number[][] = [];
  for (let i = 0; i < row.length; i++) {
    const id = row[i]!;
    if (vocab.special.has(id)) continue;
    if (opts.wholeWord && vocab.continuation[id] && words.length && words[words.length - 1]![words[words.length - 1]!.length - 1] === i - 1) {
      words[words.length - 1]!.push(i);
    } else {
      words.push([i]);
    }
  }
  const candidates = words.reduce((s, w) => s + w.length, 0);
  if (candidates === 0) return [];
  const target = maskCount(candidates, opts.rate);
  rng.shuffle(words);
  const chosen: number[] = [];
  for (const w of words) {
    if (chosen.length >= target) break;
    // As BERT's create_masked_lm_predictions: skip a word that would overshoot the count.
    if (chosen.length + w.length > target) continue;
    chosen.push(...w);
  }
  return chosen.sort((a, b) => a - b);
}

function randomToken(vocab: Vocabulary, rng: Rng): number {
  for (;;) {
    const id = Math.floor(rng.next() * vocab.size);
    if (!vocab.special.has(id)) return id;
  }
}

/** The vocabulary facts masking needs, from a tokenizer's id ↔ token maps. */
export function maskingVocabulary(tok: { vocabSize: number; clsId: number; sepId: number; padId: number; unkId: number; idToToken(id: number): string | undefined; tokenToId(t: string): number | undefined }): Vocabulary {
  const maskId = tok.tokenToId('[MASK]');
  if (maskId === undefined) throw new ModtuneError('the tokenizer has no [MASK] token; masked-LM pre-training needs one');
  const special = new Set<number>([tok.clsId, tok.sepId, tok.padId, tok.unkId, maskId]);
  const continuation = new Uint8Array(tok.vocabSize);
  for (let id = 0; id < tok.vocabSize; id++) {
    const t = tok.idToToken(id);
    if (t === undefined) special.add(id);
    else if (/^\[unused\d+\]$/.test(t)) special.add(id);
    else if (t.startsWith('##')) continuation[id] = 1;
  }
  return { size: tok.vocabSize, clsId: tok.clsId, sepId: tok.sepId, padId: tok.padId, maskId, special, continuation };
}
