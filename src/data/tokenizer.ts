import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ModtuneError } from '../errors.js';
import { bertTokenizerJson, looksUncased, parseVocab, type TokenizerJson } from './tokenizer-json.js';
import { BertWordPiece } from './bert-wordpiece.js';

export { BertWordPiece, longestFirst, type EncodedText, type TextPair } from './bert-wordpiece.js';

/** A BERT WordPiece tokenizer with a fingerprint of its definition (for caches of tokenized data). */
export class BertTokenizer extends BertWordPiece {
  /** sha256 of the effective tokenizer definition: equal fingerprints tokenize identically. */
  readonly fingerprint: string;

  constructor(json: TokenizerJson, file: string) {
    super(json, file);
    this.fingerprint = crypto.createHash('sha256').update(JSON.stringify(this.definition)).digest('hex');
  }
}

/**
 * Load a BERT tokenizer from a `tokenizer.json` or a WordPiece `vocab.txt` (or a folder holding one).
 * `lowercase` overrides the model's setting; without it a `tokenizer.json` keeps its normaliser's,
 * and a `vocab.txt` follows `do_lower_case` of a `tokenizer_config.json` beside it, else lower-cases
 * when the vocabulary is uncased.
 */
export function loadTokenizer(file: string, opts: { lowercase?: boolean } = {}): BertTokenizer {
  if (fs.existsSync(file) && fs.statSync(file).isDirectory()) {
    const json = path.join(file, 'tokenizer.json');
    const vocab = path.join(file, 'vocab.txt');
    if (fs.existsSync(json)) file = json;
    else if (fs.existsSync(vocab)) file = vocab;
    else throw new ModtuneError(`${file}: no tokenizer.json or vocab.txt in this folder`);
  }
  if (!fs.existsSync(file)) throw new ModtuneError(`${file}: tokenizer file not found; expected a tokenizer.json or vocab.txt`);
  const text = fs.readFileSync(file, 'utf8');
  if (file.endsWith('.json')) {
    let json: TokenizerJson;
    try {
      json = JSON.parse(text) as TokenizerJson;
    } catch (e) {
      throw new ModtuneError(`${file}: not valid JSON (${(e as Error).message})`);
    }
    if (!json || typeof json !== 'object' || !json.model || typeof json.model.vocab !== 'object') {
      throw new ModtuneError(`${file}: no model.vocab, expected a Hugging Face tokenizer.json`);
    }
    json.added_tokens ??= [];
    if (opts.lowercase !== undefined && json.normalizer) {
      json = { ...json, normalizer: { ...json.normalizer, lowercase: opts.lowercase } };
    }
    return new BertTokenizer(json, file);
  }
  const { vocab } = parseVocab(text, file);
  const lowercase = opts.lowercase ?? configLowercase(path.dirname(file)) ?? looksUncased(vocab.keys());
  return new BertTokenizer(bertTokenizerJson(vocab, { lowercase, file }), file);
}

function configLowercase(dir: string): boolean | undefined {
  const file = path.join(dir, 'tokenizer_config.json');
  if (!fs.existsSync(file)) return undefined;
  try {
    const value = (JSON.parse(fs.readFileSync(file, 'utf8')) as { do_lower_case?: unknown }).do_lower_case;
    return typeof value === 'boolean' ? value : undefined;
  } catch {
    throw new ModtuneError(`${file}: not valid JSON`);
  }
}
