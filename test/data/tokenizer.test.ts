import * as fs from 'node:fs';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadTokenizer, longestFirst, type BertTokenizer } from '../../src/data/tokenizer.js';
import { readGlueSplit } from '../../src/data/glue-reader.js';
import { ModtuneError } from '../../src/errors.js';
import { GLUE, TOKENIZER_JSON, VOCAB, tmpDir } from '../helpers/paths.js';

/** vocab.txt read directly: a token's id is its line number. */
const vocabIds = new Map(fs.readFileSync(VOCAB, 'utf8').split('\n').map((t, i) => [t, i] as [string, number]));
function ids(pieces: string[]): number[] {
  return pieces.map((p) => {
    const id = vocabIds.get(p);
    if (id === undefined) throw new Error(`test expectation uses '${p}', which is not in vocab.txt`);
    return id;
  });
}
const CLS = vocabIds.get('[CLS]')!;
const SEP = vocabIds.get('[SEP]')!;

/**
 * Expected word pieces, worked out from BERT's rules (uncased): drop NUL, U+FFFD and control/format
 * characters, turn whitespace into spaces, put spaces around CJK ideographs, lower-case, NFD and drop
 * non-spacing marks, split on whitespace and on every punctuation character, then greedy longest-match
 * WordPiece (`##` continuations) with [UNK] for a word that cannot be covered or has over 100 chars.
 * Which pieces exist was checked against vocab.txt (the lookup below fails otherwise).
 */
const CASES: Array<[string, string, string[]]> = [
  ['accents stripped with lower-casing', 'Héllo, WORLD!', ['hello', ',', 'world', '!']],
  ['accents in words the vocabulary splits', 'Crème Brûlée à la café', ['cr', '##eme', 'br', '##ule', '##e', 'a', 'la', 'cafe']],
  ['diaeresis, ring, cedilla', 'naïve Ångström façade', ['naive', 'ang', '##strom', 'facade']],
  ['combining marks already decomposed', 'a\u0301e\u0308 combining', ['ae', 'combining']],
  ['greedy longest match', 'unaffable', ['una', '##ffa', '##ble']],
  ['apostrophe and full stop are punctuation', "The quick brown fox's jumps.", ['the', 'quick', 'brown', 'fox', "'", 's', 'jumps', '.']],
  ['every punctuation char splits', "don't stop-believing...", ['don', "'", 't', 'stop', '-', 'believing', '.', '.', '.']],
  ['e-mail', 'e-mail: test@example.com', ['e', '-', 'mail', ':', 'test', '@', 'example', '.', 'com']],
  ['numbers', '3.14159 and 1,000,000 or 2nd 42x', ['3', '.', '141', '##59', 'and', '1', ',', '000', ',', '000', 'or', '2nd', '42', '##x']],
  ['CJK characters split, unknown ones [UNK]', '我爱北京天安门', ['我', '[UNK]', '北', '京', '天', '安', '[UNK]']],
  ['CJK inside a Latin word', 'abc中文def', ['abc', '中', '文', 'def']],
  ['CJK beyond the BMP splits too', 'a\u{20000}b', ['a', '[UNK]', 'b']],
  ['tab, newline, CRLF', 'tab\there\nnew\r\nline', ['tab', 'here', 'new', 'line']],
  ['no-break, em and ideographic spaces', 'non\u00a0breaking\u2003em\u3000ideographic', ['non', 'breaking', 'em', 'id', '##eo', '##graphic']],
  ['zero-width space and soft hyphen are dropped (format chars)', 'zero\u200bwidth\u00adsoft', ['zero', '##wi', '##dt', '##hs', '##oft']],
  ['BEL, NUL and U+FFFD are dropped', 'bell\u0007char\u0000nul\ufffdrepl', ['bell', '##cha', '##rn', '##ul', '##re', '##pl']],
  ['line separator splits; NEL, VT, FS are control chars', 'x\u2028y\u0085z\u000bw\u001cv', ['x', 'y', '##z', '##w', '##v']],
  ['unassigned and tag characters are dropped', '\u{E0001}tag \uFFFFnonchar', ['tag', 'non', '##cha', '##r']],
  ['inverted marks are punctuation', '¿Qué? ¡Sí!', ['¿', 'que', '?', '¡', 'si', '!']],
  ['long word in many pieces', 'supercalifragilisticexpialidocious', ['super', '##cal', '##if', '##rag', '##ilis', '##tic', '##ex', '##pia', '##lid', '##oc', '##ious']],
  ['unknown-looking word covered by pieces', 'xqzvbnmpwk', ['x', '##q', '##z', '##vb', '##n', '##mp', '##wk']],
  ['ligature is not decomposed by NFD', 'ﬁne ligature', ['ﬁ', '##ne', 'liga', '##ture']],
  ['Greek, final sigma', 'ΣΊΣΥΦΟΣ Ελληνικά', ['σ', '##ι', '##σ', '##υ', '##φ', '##ος', 'ε', '##λ', '##λ', '##η', '##ν', '##ι', '##κ', '##α']],
  ['Cyrillic', 'Привет мир', ['п', '##р', '##и', '##в', '##е', '##т', 'м', '##и', '##р']],
  ['emoji unknown', '🙂 emoji 🎉', ['[UNK]', 'em', '##oj', '##i', '[UNK]']],
  ['surrounding whitespace', '   leading and trailing   ', ['leading', 'and', 'trailing']],
  ['empty', '', []],
  ['100 chars is still split', 'a'.repeat(100), ['aaa', ...new Array(48).fill('##aa'), '##a']],
  ['over 100 chars is [UNK]', 'a'.repeat(101), ['[UNK]']],
  ['101 chars counted after accent stripping still [UNK]', `${'e'.repeat(100)}x`, ['[UNK]']],
];

describe('BERT WordPiece tokenizer', () => {
  let fromJson: BertTokenizer;
  let fromVocab: BertTokenizer;
  beforeAll(() => {
    fromJson = loadTokenizer(TOKENIZER_JSON);
    fromVocab = loadTokenizer(VOCAB);
  });

  it('loads both files with the same vocabulary and specials', () => {
    for (const t of [fromJson, fromVocab]) {
      expect(t.vocabSize).toBe(30522);
      expect(t.padId).toBe(vocabIds.get('[PAD]'));
      expect(t.clsId).toBe(CLS);
      expect(t.sepId).toBe(SEP);
      expect(t.unkId).toBe(vocabIds.get('[UNK]'));
      expect(t.lowercase).toBe(true);
    }
  });

  it.each(CASES)('%s', (_what, text, pieces) => {
    const want = ids(pieces);
    expect(fromJson.encodeIds(text)).toEqual(want);
    expect(fromVocab.encodeIds(text)).toEqual(want);
    expect(fromVocab.encode(text, undefined, 512)).toEqual({ inputIds: [CLS, ...want, SEP], tokenTypeIds: new Array(want.length + 2).fill(0) });
  });

  it('keeps special-token strings whole, as Hugging Face tokenizers do', () => {
    expect(fromVocab.encodeIds('[CLS] keep [MASK] x')).toEqual(ids(['[CLS]', 'keep', '[MASK]', 'x']));
  });

  it('frames pairs as [CLS] A [SEP] B [SEP] with token types 0…0 1…1', () => {
    const a = ids(['hello', ',', 'world', '!']);
    const b = ids(['una', '##ffa', '##ble']);
    expect(fromJson.encode('Héllo, WORLD!', 'unaffable', 128)).toEqual({
      inputIds: [CLS, ...a, SEP, ...b, SEP],
      tokenTypeIds: [0, 0, 0, 0, 0, 0, 1, 1, 1, 1],
    });
  });

  it('truncates a single text at the end and a pair longest-first', () => {
    const t = fromVocab;
    // 'a b c d e f' → 6 tokens; maxLength 5 keeps 3 after [CLS] … [SEP].
    expect(t.encode('a b c d e f', undefined, 5).inputIds).toEqual([CLS, ...ids(['a', 'b', 'c']), SEP]);
    // A has 6, B has 2 tokens; budget 9 − 3 = 6: A shrinks to 4 (the longer side loses tokens first).
    const pair = t.encode('a b c d e f', 'x y', 9);
    expect(pair.inputIds).toEqual([CLS, ...ids(['a', 'b', 'c', 'd']), SEP, ...ids(['x', 'y']), SEP]);
    expect(pair.tokenTypeIds).toEqual([0, 0, 0, 0, 0, 0, 1, 1, 1]);
    // Equal lengths 4 and 4, budget 5: one at a time from the longer, B on ties → A 3, B 2.
    expect(t.encode('a b c d', 'w x y z', 8).inputIds).toEqual([CLS, ...ids(['a', 'b', 'c']), SEP, ...ids(['w', 'x']), SEP]);
    expect(() => t.encode('a', 'b', 2)).toThrow(ModtuneError);
  });

  it('longestFirst matches removing one token at a time from the longer side', () => {
    const slow = (a: number, b: number, budget: number) => {
      while (a + b > budget) {
        if (a > b) a--;
        else b--;
      }
      return [a, b];
    };
    for (let a = 0; a <= 12; a++) for (let b = 0; b <= 12; b++) for (let budget = 0; budget <= 20; budget++) {
      expect(longestFirst(a, b, budget)).toEqual(slow(a, b, budget));
    }
  });

  it('encodeBatch encodes each item', () => {
    const out = fromJson.encodeBatch([{ textA: 'hello' }, { textA: 'hello', textB: 'world' }], 16);
    expect(out.map((e) => e.inputIds)).toEqual([[CLS, ...ids(['hello']), SEP], [CLS, ...ids(['hello']), SEP, ...ids(['world']), SEP]]);
  });

  it('ignores the padding/truncation fixed in tokenizer.json', () => {
    const long = 'word '.repeat(300);
    expect(fromJson.encode(long, undefined, 512).inputIds).toHaveLength(302);
    expect(fromJson.encode('short', undefined, 512).inputIds).toHaveLength(3);
  });

  it('gives identical ids from tokenizer.json and vocab.txt on real GLUE text', () => {
    const rows = [
      ...readGlueSplit('MRPC', 'dev', GLUE).examples,
      ...readGlueSplit('STS-B', 'dev', GLUE).examples.slice(0, 400),
      ...readGlueSplit('CoLA', 'dev', GLUE).examples,
    ];
    const a = fromJson.encodeBatch(rows, 128);
    const b = fromVocab.encodeBatch(rows, 128);
    const differing = a.filter((e, i) => JSON.stringify(e) !== JSON.stringify(b[i]));
    expect(differing).toEqual([]);
    expect(a.every((e) => e.inputIds.length <= 128)).toBe(true);
  });

  it('follows do_lower_case: cased vocabularies keep case, and the option overrides', () => {
    const dir = tmpDir();
    const cased = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]', 'Hello', 'hello', 'Café', 'cafe', 'É', '##t', ','];
    fs.writeFileSync(path.join(dir, 'vocab.txt'), `${cased.join('\n')}\n`);
    const keep = loadTokenizer(path.join(dir, 'vocab.txt'));
    expect(keep.lowercase).toBe(false);
    expect(keep.tokenize('Hello, hello Café Ét')).toEqual(['Hello', ',', 'hello', 'Café', 'É', '##t']);
    const lower = loadTokenizer(path.join(dir, 'vocab.txt'), { lowercase: true });
    expect(lower.tokenize('Hello Café')).toEqual(['hello', 'cafe']);
    // tokenizer_config.json beside the vocabulary decides when no option is given.
    fs.writeFileSync(path.join(dir, 'tokenizer_config.json'), JSON.stringify({ do_lower_case: true }));
    expect(loadTokenizer(path.join(dir, 'vocab.txt')).lowercase).toBe(true);
    // The uncased tokenizer.json with lower-casing switched off keeps case (and accents).
    const off = loadTokenizer(TOKENIZER_JSON, { lowercase: false });
    expect(off.lowercase).toBe(false);
    expect(off.encodeIds('Hello')).toEqual(ids(['[UNK]']));
    expect(off.fingerprint).not.toBe(fromJson.fingerprint);
  });

  it('rejects files that are not BERT WordPiece tokenizers', () => {
    const dir = tmpDir();
    const bpe = path.join(dir, 'tokenizer.json');
    fs.writeFileSync(bpe, JSON.stringify({ model: { type: 'BPE', vocab: {}, merges: [] }, normalizer: null, pre_tokenizer: null, post_processor: null, decoder: null }));
    expect(() => loadTokenizer(bpe)).toThrow(/model type is BPE; only BERT WordPiece tokenizers are supported/);
    const noCls = path.join(dir, 'vocab.txt');
    fs.writeFileSync(noCls, '[PAD]\n[UNK]\nhello\n');
    expect(() => loadTokenizer(noCls)).toThrow(/no '\[CLS\]' token/);
    expect(() => loadTokenizer(path.join(dir, 'missing.txt'))).toThrow(/tokenizer file not found/);
  });
});
