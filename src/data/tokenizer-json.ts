import { ModtuneError } from '../errors.js';

/** The parts of a Hugging Face `tokenizer.json` this project reads or writes. */
export interface TokenizerJson {
  version?: string;
  truncation?: unknown;
  padding?: { pad_id?: number; pad_token?: string } | null;
  added_tokens: Array<{ id: number; content: string; single_word?: boolean; lstrip?: boolean; rstrip?: boolean; normalized?: boolean; special?: boolean }>;
  normalizer: Record<string, unknown> | null;
  pre_tokenizer: Record<string, unknown> | null;
  post_processor: Record<string, unknown> | null;
  decoder: Record<string, unknown> | null;
  model: { type: string; vocab: Record<string, number>; unk_token?: string; continuing_subword_prefix?: string; max_input_chars_per_word?: number };
}

export const BERT_SPECIAL_TOKENS = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'] as const;

/**
 * Parse a WordPiece `vocab.txt`: one token a line, its id the line number (0-based). A later
 * duplicate takes the id, as the reference loaders' dictionaries do.
 */
export function parseVocab(text: string, file: string): { vocab: Map<string, number>; size: number } {
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  const lines = text.split('\n');
  if (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  if (lines.length === 0) throw new ModtuneError(`${file}: empty vocabulary, expected one WordPiece token per line`);
  const vocab = new Map<string, number>();
  lines.forEach((line, i) => vocab.set(line.endsWith('\r') ? line.slice(0, -1) : line, i));
  return { vocab, size: lines.length };
}

/**
 * An uncased vocabulary has no token that lower-casing would change (the bracketed special tokens
 * aside); a cased one (`The`, `A`...) has many.
 */
export function looksUncased(vocab: Iterable<string>): boolean {
  for (const token of vocab) {
    if (token.startsWith('[') && token.endsWith(']')) continue;
    if (token !== token.toLowerCase()) return false;
  }
  return true;
}

/**
 * The `tokenizer.json` of a BERT tokenizer with this vocabulary, as Hugging Face's fast BERT
 * tokenizer would write it: BertNormalizer (clean text, split CJK characters, lower-case and strip
 * accents when `lowercase`), BertPreTokenizer, WordPiece (`##`, 100 chars max per word), and the
 * `[CLS] A [SEP] B [SEP]` template. The special tokens present in the vocabulary are added tokens.
 */
export function bertTokenizerJson(vocab: Map<string, number>, opts: { lowercase: boolean; file: string }): TokenizerJson {
  const idOf = (token: string) => {
    const id = vocab.get(token);
    if (id === undefined) throw new ModtuneError(`${opts.file}: no '${token}' token, expected a BERT WordPiece vocabulary`);
    return id;
  };
  const cls = idOf('[CLS]');
  const sep = idOf('[SEP]');
  idOf('[UNK]');
  const added = BERT_SPECIAL_TOKENS.filter((t) => vocab.has(t)).map((content) => ({
    id: vocab.get(content)!, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true,
  }));
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: added,
    normalizer: { type: 'BertNormalizer', clean_text: true, handle_chinese_chars: true, strip_accents: null, lowercase: opts.lowercase },
    pre_tokenizer: { type: 'BertPreTokenizer' },
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: '[CLS]', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: '[SEP]', type_id: 0 } }],
      pair: [
        { SpecialToken: { id: '[CLS]', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: '[SEP]', type_id: 0 } },
        { Sequence: { id: 'B', type_id: 1 } }, { SpecialToken: { id: '[SEP]', type_id: 1 } },
      ],
      special_tokens: {
        '[CLS]': { id: '[CLS]', ids: [cls], tokens: ['[CLS]'] },
        '[SEP]': { id: '[SEP]', ids: [sep], tokens: ['[SEP]'] },
      },
    },
    decoder: { type: 'WordPiece', prefix: '##', cleanup: true },
    model: {
      type: 'WordPiece', unk_token: '[UNK]', continuing_subword_prefix: '##', max_input_chars_per_word: 100,
      vocab: Object.fromEntries(vocab),
    },
  };
}

/**
 * The ids of the tokens that frame a BERT input, read from the post-processor: TemplateProcessing
 * `[X] A [Y]` / `[X] A [Y] B:1 [Y]:1`, or BertProcessing's `cls`/`sep`.
 */
export function bertFrameTokens(json: TokenizerJson, file: string): { cls: number; sep: number } {
  const pp = json.post_processor as Record<string, any> | null;
  const bad = (why: string) => new ModtuneError(`${file}: post_processor ${why}; expected BERT's [CLS] A [SEP] B [SEP] template`);
  if (!pp) throw bad('is missing');
  if (pp.type === 'BertProcessing') {
    const cls = pp.cls?.[1];
    const sep = pp.sep?.[1];
    if (!Number.isInteger(cls) || !Number.isInteger(sep)) throw bad('has no cls/sep ids');
    return { cls, sep };
  }
  if (pp.type !== 'TemplateProcessing') throw bad(`is ${String(pp.type)}`);
  const single = pp.single as any[] | undefined;
  const pair = pp.pair as any[] | undefined;
  const special = (item: any) => item?.SpecialToken?.id as string | undefined;
  const sequence = (item: any) => item?.Sequence?.id as string | undefined;
  const typeId = (item: any) => (item?.SpecialToken ?? item?.Sequence)?.type_id ?? 0;
  if (!single || single.length !== 3 || !special(single[0]) || sequence(single[1]) !== 'A' || !special(single[2])) throw bad('single template is not [X] A [Y]');
  const clsName = special(single[0])!;
  const sepName = special(single[2])!;
  if (!pair || pair.length !== 5 || special(pair[0]) !== clsName || sequence(pair[1]) !== 'A' || special(pair[2]) !== sepName ||
    sequence(pair[3]) !== 'B' || special(pair[4]) !== sepName || typeId(pair[1]) !== 0 || typeId(pair[3]) !== 1 || typeId(pair[4]) !== 1) {
    throw bad('pair template is not [X] A [Y] B:1 [Y]:1');
  }
  const idOf = (name: string) => {
    const ids = pp.special_tokens?.[name]?.ids;
    const id = Array.isArray(ids) && ids.length === 1 ? ids[0] : json.model.vocab[name];
    if (!Number.isInteger(id)) throw bad(`names special token '${name}' without a single id`);
    return id as number;
  };
  return { cls: idOf(clsName), sep: idOf(sepName) };
}
