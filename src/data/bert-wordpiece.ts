/** BERT WordPiece tokenization without Node I/O (files: ./tokenizer.ts). */
import { Tokenizer } from '@huggingface/tokenizers';
import { ModtuneError } from '../errors.js';
import { bertFrameTokens, type TokenizerJson } from './tokenizer-json.js';

export interface EncodedText {
  inputIds: number[];
  tokenTypeIds: number[];
}

export interface TextPair {
  textA: string;
  textB?: string;
}

/** CJK ideographs outside the Basic Multilingual Plane (extensions B–F and the supplement). */
const ASTRAL_CJK = /[\u{20000}-\u{2A6DF}\u{2A700}-\u{2B73F}\u{2B740}-\u{2B81F}\u{2B820}-\u{2CEAF}\u{2F800}-\u{2FA1F}]/gu;
const UNASSIGNED = /\p{Cn}/gu;

/**
 * A BERT WordPiece tokenizer (`@huggingface/tokenizers` does normalisation, pre-tokenisation and
 * WordPiece), with BERT's input framing and longest-first truncation done here, since that library
 * applies neither. No Node modules: the browser page tokenizes with it too.
 */
export class BertWordPiece {
  readonly vocabSize: number;
  readonly padId: number;
  readonly clsId: number;
  readonly sepId: number;
  readonly unkId: number;
  readonly lowercase: boolean;
  /** The effective tokenizer definition (the file's, without its fixed truncation and padding). */
  readonly definition: TokenizerJson;
  private readonly tokenizer: Tokenizer;
  private readonly cleanText: boolean;
  private readonly splitCjk: boolean;

  constructor(json: TokenizerJson, file: string) {
    if (json.model?.type !== 'WordPiece') {
      throw new ModtuneError(`${file}: model type is ${String(json.model?.type)}; only BERT WordPiece tokenizers are supported`);
    }
    const normalizer = json.normalizer as Record<string, unknown> | null;
    if (normalizer?.type !== 'BertNormalizer' || json.pre_tokenizer?.type !== 'BertPreTokenizer') {
      throw new ModtuneError(`${file}: expected a BertNormalizer and a BertPreTokenizer, found ${String(normalizer?.type)} and ${String(json.pre_tokenizer?.type)}`);
    }
    // The file's fixed truncation/padding (often 128) is not ours to follow: lengths are per call.
    json = { ...json, truncation: null, padding: null, decoder: json.decoder ?? { type: 'WordPiece', prefix: '##', cleanup: true } };
    try {
      this.tokenizer = new Tokenizer(json, {});
    } catch (e) {
      throw new ModtuneError(`${file}: cannot build the tokenizer: ${(e as Error).message}`);
    }
    const { cls, sep } = bertFrameTokens(json, file);
    this.clsId = cls;
    this.sepId = sep;
    const unk = json.model.unk_token ?? '[UNK]';
    const unkId = this.tokenizer.token_to_id(unk);
    if (unkId === undefined) throw new ModtuneError(`${file}: unknown-word token '${unk}' is not in the vocabulary`);
    this.unkId = unkId;
    this.padId = this.tokenizer.token_to_id('[PAD]') ?? 0;
    let maxId = -1;
    for (const id of Object.values(json.model.vocab)) if (id > maxId) maxId = id;
    for (const t of json.added_tokens ?? []) if (t.id > maxId) maxId = t.id;
    this.vocabSize = maxId + 1;
    this.lowercase = normalizer.lowercase === true;
    this.cleanText = normalizer.clean_text !== false;
    this.splitCjk = normalizer.handle_chinese_chars !== false;
    this.definition = json;
  }

  /**
   * Two gaps of the library's BertNormalizer, closed before it runs: it walks UTF-16 code units, so
   * CJK ideographs beyond the BMP are not split off; and it keeps unassigned code points, which
   * BERT's clean-up drops with the other "C*" categories.
   */
  private prepare(text: string): string {
    if (this.cleanText) text = text.replace(UNASSIGNED, '');
    if (this.splitCjk) text = text.replace(ASTRAL_CJK, ' $& ');
    return text;
  }

  /** Word pieces of one text, without special tokens. */
  tokenize(text: string): string[] {
    return this.tokenizer.tokenize(this.prepare(text));
  }

  /** Ids of one text, without special tokens or truncation. */
  encodeIds(text: string): number[] {
    return this.tokenizer.encode(this.prepare(text), { add_special_tokens: false }).ids;
  }

  /**
   * `[CLS] A [SEP]` or `[CLS] A [SEP] B [SEP]` (token type 1 from B on), truncated to `maxLength`
   * tokens in all: a single text loses its tail; a pair loses tokens one at a time from the longer
   * side (from B on ties), as BERT's `_truncate_seq_pair` does.
   */
  encode(textA: string, textB?: string, maxLength = 512): EncodedText {
    const pair = textB !== undefined && textB !== null;
    const budget = maxLength - (pair ? 3 : 2);
    if (!Number.isInteger(maxLength) || budget < 0) {
      throw new ModtuneError(`max sequence length ${maxLength} is too short: expected an integer ≥ ${pair ? 3 : 2} for ${pair ? 'a text pair' : 'one text'}`);
    }
    const a = this.encodeIds(textA);
    if (!pair) {
      const kept = a.length > budget ? a.slice(0, budget) : a;
      const inputIds = [this.clsId, ...kept, this.sepId];
      return { inputIds, tokenTypeIds: new Array<number>(inputIds.length).fill(0) };
    }
    const b = this.encodeIds(textB);
    const [keepA, keepB] = longestFirst(a.length, b.length, budget);
    const inputIds = [this.clsId, ...a.slice(0, keepA), this.sepId, ...b.slice(0, keepB), this.sepId];
    const tokenTypeIds = new Array<number>(inputIds.length).fill(0);
    tokenTypeIds.fill(1, keepA + 2);
    return { inputIds, tokenTypeIds };
  }

  encodeBatch(items: ReadonlyArray<TextPair>, maxLength = 512): EncodedText[] {
    return items.map((item) => this.encode(item.textA, item.textB, maxLength));
  }

  tokenToId(token: string): number | undefined {
    return this.tokenizer.token_to_id(token);
  }

  idToToken(id: number): string | undefined {
    return this.tokenizer.id_to_token(id);
  }
}

/**
 * How many tokens of each side survive longest-first truncation to `budget`: removing one token at
 * a time from the longer side (from the second on ties) is the same as cutting the longer side down
 * to the shorter one, then splitting what is left with the extra token going to the first side.
 */
export function longestFirst(lengthA: number, lengthB: number, budget: number): [number, number] {
  let a = lengthA;
  let b = lengthB;
  if (a + b <= budget) return [a, b];
  if (a > b) a = Math.max(b, budget - b);
  else if (b > a) b = Math.max(a, budget - a);
  if (a + b > budget) {
    b = Math.floor(budget / 2);
    a = budget - b;
  }
  return [a, b];
}

