/**
 * Fill-mask: the standard sanity check of a pre-trained BERT (what Hugging Face's `fill-mask`
 * pipeline does): the most likely tokens, with their probabilities, at each `[MASK]` of a text.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ModtuneError } from '../errors.js';
import { buildBert } from '../bert/build.js';
import { parseHfConfig } from '../bert/config.js';
import { loadWeights } from '../bert/weights.js';
import { loadTokenizer, type BertTokenizer } from '../data/tokenizer.js';
import { encodeModel, loadModel } from '../onnx/io.js';
import type { Model } from '../onnx/graph.js';
import { loadRuntime, type RuntimeSession } from './runtime.js';

export interface FillMaskCandidate {
  token: string;
  id: number;
  score: number;
}

export interface FillMaskOptions {
  /** A model folder (config.json + model.safetensors with the MLM head) or an ONNX file whose `logits` are [batch, sequence, vocab]. */
  model: string;
  tokenizer?: string;
  topK?: number;
}

/** A loaded masked-LM, ready to fill masks in many texts. */
export class FillMask {
  private constructor(private readonly session: RuntimeSession, readonly tokenizer: BertTokenizer, private readonly maskId: number, private readonly label: string) {}

  static async load(opts: FillMaskOptions): Promise<FillMask> {
    const { model, tokenizerFile } = loadMaskedLm(opts.model, opts.tokenizer);
    const tokenizer = loadTokenizer(tokenizerFile);
    const maskId = tokenizer.tokenToId('[MASK]');
    if (maskId === undefined) throw new ModtuneError(`${tokenizerFile}: the vocabulary has no [MASK] token`);
    const runtime = await loadRuntime('node');
    const session = await runtime.createSession(encodeModel(model));
    if (!session.outputNames.includes('logits')) {
      await session.release();
      throw new ModtuneError(`${opts.model}: the model has no 'logits' output; fill-mask needs a masked-LM (config.json + model.safetensors with cls.predictions.*)`);
    }
    return new FillMask(session, tokenizer, maskId, opts.model);
  }

  /** For each `[MASK]` in `text`, in order, the `topK` most likely tokens. */
  async fill(text: string, topK = 5): Promise<FillMaskCandidate[][]> {
    if (!Number.isInteger(topK) || topK < 1) throw new ModtuneError(`--top-k must be a positive integer, got ${topK}`);
    const enc = this.tokenizer.encode(text, undefined, 512);
    const masks = enc.inputIds.flatMap((id, i) => (id === this.maskId ? [i] : []));
    if (masks.length === 0) throw new ModtuneError(`--text has no [MASK] token: write [MASK] where a word should be predicted, e.g. "the capital of france is [MASK]."`);
    const S = enc.inputIds.length;
    const runtime = await loadRuntime('node');
    const feeds: Record<string, ReturnType<typeof runtime.int64>> = {
      input_ids: runtime.int64(BigInt64Array.from(enc.inputIds, BigInt), [1, S]),
      attention_mask: runtime.int64(new BigInt64Array(S).fill(1n), [1, S]),
      token_type_ids: runtime.int64(new BigInt64Array(S), [1, S]),
    };
    for (const k of Object.keys(feeds)) if (!this.session.inputNames.includes(k)) delete feeds[k];
    const out = await this.session.run(feeds);
    const logits = out.logits!.data as Float32Array;
    const V = logits.length / S;
    if (!Number.isInteger(V) || V < this.tokenizer.vocabSize) throw new ModtuneError(`${this.label}: 'logits' is not [1, ${S}, vocab] (got ${logits.length} values)`);
    return masks.map((pos) => topTokens(logits.subarray(pos * V, (pos + 1) * V), topK, (id) => this.tokenizer.idToToken(id) ?? `[${id}]`));
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}

/** Softmax over one row of logits and its `k` largest entries. */
export function topTokens(row: Float32Array, k: number, name: (id: number) => string): FillMaskCandidate[] {
  let max = -Infinity;
  for (const v of row) if (v > max) max = v;
  let sum = 0;
  for (const v of row) sum += Math.exp(v - max);
  const top: number[] = [];
  for (let i = 0; i < row.length; i++) {
    if (top.length < k || row[i]! > row[top[top.length - 1]!]!) {
      top.push(i);
      top.sort((a, b) => row[b]! - row[a]!);
      if (top.length > k) top.pop();
    }
  }
  return top.map((id) => ({ token: name(id), id, score: Math.exp(row[id]! - max) / sum }));
}

function loadMaskedLm(location: string, tokenizer?: string): { model: Model; tokenizerFile: string } {
  let stat: fs.Stats;
  try {
    stat = fs.statSync(location);
  } catch {
    throw new ModtuneError(`${location}: no such model folder or file`);
  }
  const dir = stat.isDirectory() ? location : path.dirname(location);
  const tokenizerFile = tokenizer ?? ['tokenizer.json', 'vocab.txt'].map((f) => path.join(dir, f)).find((f) => fs.existsSync(f));
  if (!tokenizerFile) throw new ModtuneError(`${location}: no tokenizer.json or vocab.txt beside the model; pass --tokenizer`);
  if (!stat.isDirectory()) return { model: loadModel(location), tokenizerFile };
  const configFile = path.join(location, 'config.json');
  if (!fs.existsSync(configFile)) throw new ModtuneError(`${location}: not a model folder (no config.json)`);
  const config = parseHfConfig(JSON.parse(fs.readFileSync(configFile, 'utf8')), configFile);
  const weights = loadWeights(location);
  if (!weights.has('cls.predictions.bias')) throw new ModtuneError(`${location}: the weights have no masked-LM head (cls.predictions.*); fill-mask needs a BertForMaskedLM checkpoint`);
  return { model: buildBert({ config, weights, weightsLabel: location, mlmHead: 'all', pooler: false }), tokenizerFile };
}
