import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { SHARED } from '../helpers/paths.js';

/** The first `lines` lines of a Wikipedia shard of the shared corpus (read, never copied into the project). */
export function wikiLines(lines: number, shard = 'wiki_000'): string[] {
  const text = zlib.gunzipSync(fs.readFileSync(path.join(SHARED, 'corpus/wiki', `${shard}.txt.gz`))).toString('utf8');
  return text.split('\n').slice(0, lines);
}

/**
 * A small WordPiece vocabulary for fast tests: BERT's special tokens, single letters and digits (and
 * their `##` forms, so every word tokenizes), and the most frequent words of `lines`.
 */
export function smallVocab(lines: string[], words = 400): string {
  const counts = new Map<string, number>();
  for (const l of lines) for (const w of l.toLowerCase().match(/[a-z]+/g) ?? []) counts.set(w, (counts.get(w) ?? 0) + 1);
  const top = [...counts].sort((a, b) => b[1] - a[1]).slice(0, words).map(([w]) => w);
  const chars = [...'abcdefghijklmnopqrstuvwxyz0123456789'];
  const punct = [...'.,;:!?\'"()-'];
  const tokens = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]', ...punct, ...chars, ...chars.map((c) => `##${c}`), ...top.filter((w) => w.length > 1)];
  return `${[...new Set(tokens)].join('\n')}\n`;
}

/** Write a corpus file and a vocabulary into `dir`; returns their paths. */
export function writeCorpus(dir: string, lines: string[], name = 'corpus.txt'): { corpus: string; vocab: string } {
  fs.mkdirSync(dir, { recursive: true });
  const corpus = path.join(dir, name);
  fs.writeFileSync(corpus, `${lines.join('\n')}\n`);
  const vocab = path.join(dir, 'vocab.txt');
  if (!fs.existsSync(vocab)) fs.writeFileSync(vocab, smallVocab(lines));
  return { corpus, vocab };
}
