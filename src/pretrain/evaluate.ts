/**
 * Held-out masked-LM loss and masked-token accuracy of a model folder on a corpus's held-out slice:
 * the same sequences and masks a pre-training run with this seed and sequence length evaluates on,
 * through plain inference (the MLM head over the masked positions only).
 */
import { buildBert } from '../bert/build.js';
import type { Batch } from '../data/batching.js';
import { loadTokenizer } from '../data/tokenizer.js';
import { ModtuneError } from '../errors.js';
import { encodeModel } from '../onnx/io.js';
import { loadRuntime } from '../predict/runtime.js';
import { Rng } from '../util/random.js';
import { maskBatch, maskingVocabulary, type MaskingOptions, type Vocabulary } from './masking.js';
import { readModelFolder } from './model-folder.js';
import { loadOrBuildShard, type TokenShard } from './shard.js';

export interface HeldOutResult {
  loss: number;
  accuracy: number;
  sequences: number;
  maskedTokens: number;
}

/** The held-out evaluation set: the first sequences of the held-out stream, masked once with a fixed seed. */
export function heldOutBatches(shard: TokenShard, o: { seqLen: number; batchSize: number; evalSequences: number; seed: number }, vocab: Vocabulary, masking: MaskingOptions): Batch[] {
  const content = o.seqLen - 2;
  const n = Math.min(o.evalSequences, Math.floor(shard.heldOut.length / content));
  const rng = new Rng(o.seed + 104729);
  const out: Batch[] = [];
  for (let start = 0; start < n; start += o.batchSize) {
    const blocks = [];
    for (let b = start; b < Math.min(n, start + o.batchSize); b++) blocks.push(shard.heldOut.subarray(b * content, (b + 1) * content));
    out.push(maskBatch(blocks, vocab, masking, rng));
  }
  return out;
}

/** Mean cross-entropy and argmax accuracy of [M, V] logits against M labels. */
export function scoreMasked(logits: Float32Array, labels: BigInt64Array): { lossSum: number; correct: number } {
  const V = logits.length / labels.length;
  let lossSum = 0, correct = 0;
  for (let i = 0; i < labels.length; i++) {
    const row = logits.subarray(i * V, (i + 1) * V);
    let best = 0, max = -Infinity;
    for (let j = 0; j < V; j++) if (row[j]! > max) { max = row[j]!; best = j; }
    let sum = 0;
    for (let j = 0; j < V; j++) sum += Math.exp(row[j]! - max);
    const label = Number(labels[i]);
    lossSum += max + Math.log(sum) - row[label]!;
    if (best === label) correct++;
  }
  return { lossSum, correct };
}

export interface EvaluateFolderOptions {
  model: string;
  corpus: string[];
  cacheDir: string;
  seqLen?: number;
  batchSize?: number;
  evalSequences?: number;
  seed?: number;
  maskRate?: number;
  wholeWord?: boolean;
  threads?: number;
}

export async function evaluateModelFolder(o: EvaluateFolderOptions): Promise<HeldOutResult> {
  const folder = readModelFolder(o.model);
  if (!folder.tokenizer) throw new ModtuneError(`${o.model}: no vocab.txt or tokenizer.json in the model folder`);
  const tokenizer = loadTokenizer(folder.tokenizer);
  const shard = await loadOrBuildShard({ corpus: o.corpus, tokenizer, cacheDir: o.cacheDir });
  const batches = heldOutBatches(shard, { seqLen: o.seqLen ?? 128, batchSize: o.batchSize ?? 32, evalSequences: o.evalSequences ?? 256, seed: o.seed ?? 0 },
    maskingVocabulary(tokenizer), { rate: o.maskRate ?? 0.15, wholeWord: !!o.wholeWord });
  if (batches.length === 0) throw new ModtuneError(`corpus: too little held-out text for one sequence of ${o.seqLen ?? 128} tokens`);
  const runtime = await loadRuntime('node', { numThreads: o.threads });
  const session = await runtime.createSession(encodeModel(buildBert({ config: folder.config, weights: folder.weights, weightsLabel: o.model, mlmHead: 'masked', pooler: false })));
  let lossSum = 0, correct = 0, count = 0, sequences = 0;
  try {
    for (const b of batches) {
      const dims = [b.batch, b.seqLen];
      const out = await session.run({
        input_ids: runtime.int64(b.inputIds, dims), attention_mask: runtime.int64(b.attentionMask, dims), token_type_ids: runtime.int64(b.tokenTypeIds, dims),
        masked_positions: runtime.int64(b.maskedPositions!, [b.maskedPositions!.length]),
      });
      const s = scoreMasked(out.logits!.data as Float32Array, b.labels as BigInt64Array);
      lossSum += s.lossSum;
      correct += s.correct;
      count += b.labels!.length;
      sequences += b.batch;
    }
  } finally {
    await session.release();
  }
  return { loss: lossSum / count, accuracy: correct / count, sequences, maskedTokens: count };
}
