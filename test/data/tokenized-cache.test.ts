import * as fs from 'node:fs';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { encodeExamples } from '../../src/data/encoded.js';
import { readGlueSplit } from '../../src/data/glue-reader.js';
import { loadEncodedSplit } from '../../src/data/tokenized-cache.js';
import { loadTokenizer, type BertTokenizer } from '../../src/data/tokenizer.js';
import { GLUE, VOCAB, tmpDir } from '../helpers/paths.js';

/** The same tokenizer, counting how often it is asked to encode. */
function counting(t: BertTokenizer): { tokenizer: BertTokenizer; calls: () => number } {
  let calls = 0;
  const wrapped = Object.create(t) as BertTokenizer;
  wrapped.encode = (a, b, n) => {
    calls++;
    return t.encode(a, b, n);
  };
  return { tokenizer: wrapped, calls: () => calls };
}

describe('tokenized split cache', () => {
  let tokenizer: BertTokenizer;
  beforeAll(() => {
    tokenizer = loadTokenizer(VOCAB);
  });

  it('stores on a miss and returns identical data on a hit without tokenizing', () => {
    const cacheDir = tmpDir();
    const first = counting(tokenizer);
    const miss = loadEncodedSplit({ task: 'RTE', split: 'dev', dir: GLUE, tokenizer: first.tokenizer, maxLength: 64, cacheDir });
    expect(miss.cacheHit).toBe(false);
    expect(first.calls()).toBe(277);
    expect(fs.existsSync(path.join(cacheDir, 'tokenized', `${miss.key}.bin`))).toBe(true);
    expect(fs.existsSync(path.join(cacheDir, 'tokenized', `${miss.key}.json`))).toBe(true);

    const second = counting(tokenizer);
    const hit = loadEncodedSplit({ task: 'rte', split: 'dev', dir: GLUE, tokenizer: second.tokenizer, maxLength: 64, cacheDir });
    expect(hit.cacheHit).toBe(true);
    expect(second.calls()).toBe(0);
    expect(hit.key).toBe(miss.key);
    expect(hit.dataset).toEqual(miss.dataset);

    // And both equal tokenizing directly.
    const direct = encodeExamples(tokenizer, readGlueSplit('RTE', 'dev', GLUE).examples, 64);
    expect(hit.dataset).toEqual(direct);
    expect(hit.dataset.labelKind).toBe('class');
    expect(Math.max(...Array.from({ length: hit.dataset.size }, (_, i) => hit.dataset.offsets[i + 1]! - hit.dataset.offsets[i]!))).toBe(64);
  });

  it('keys on max length, tokenizer and file content', () => {
    const cacheDir = tmpDir();
    const glue = tmpDir();
    fs.mkdirSync(path.join(glue, 'STS-B'));
    const header = 'index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore\n';
    const file = path.join(glue, 'STS-B', 'dev.tsv');
    fs.writeFileSync(file, `${header}0\tg\tf\ty\t0\tn\tn\tA man plays.\tA man is playing.\t4.200\n`);
    const load = (maxLength: number, t = tokenizer) => loadEncodedSplit({ task: 'STS-B', split: 'dev', dir: glue, tokenizer: t, maxLength, cacheDir });
    const a = load(32);
    expect(a.dataset.labelKind).toBe('score');
    expect(a.dataset.labels![0]).toBeCloseTo(4.2, 6);
    expect(load(32).cacheHit).toBe(true);
    expect(load(16).key).not.toBe(a.key);
    expect(load(32, loadTokenizer(VOCAB, { lowercase: false })).key).not.toBe(a.key);
    fs.writeFileSync(file, `${header}0\tg\tf\ty\t0\tn\tn\tA woman plays.\tA man is playing.\t1.000\n`);
    const changed = load(32);
    expect(changed.cacheHit).toBe(false);
    expect(changed.key).not.toBe(a.key);
    expect(changed.dataset.labels![0]).toBe(1);
  });

  it('treats a damaged entry as a miss and rewrites it', () => {
    const cacheDir = tmpDir();
    const first = loadEncodedSplit({ task: 'WNLI', split: 'dev', dir: GLUE, tokenizer, maxLength: 128, cacheDir });
    const bin = path.join(cacheDir, 'tokenized', `${first.key}.bin`);
    fs.writeFileSync(bin, fs.readFileSync(bin).subarray(0, 100));
    const again = loadEncodedSplit({ task: 'WNLI', split: 'dev', dir: GLUE, tokenizer, maxLength: 128, cacheDir });
    expect(again.cacheHit).toBe(false);
    expect(again.dataset).toEqual(first.dataset);
    expect(loadEncodedSplit({ task: 'WNLI', split: 'dev', dir: GLUE, tokenizer, maxLength: 128, cacheDir }).cacheHit).toBe(true);
  });

  it('keeps test-split ids and has no labels there', () => {
    const cacheDir = tmpDir();
    const loaded = loadEncodedSplit({ task: 'WNLI', split: 'test', dir: GLUE, tokenizer, maxLength: 128, cacheDir });
    const hit = loadEncodedSplit({ task: 'WNLI', split: 'test', dir: GLUE, tokenizer, maxLength: 128, cacheDir });
    expect(hit.cacheHit).toBe(true);
    expect(hit.dataset.labels).toBeNull();
    expect(hit.dataset.labelKind).toBe('none');
    expect(hit.dataset.ids).toEqual(readGlueSplit('WNLI', 'test', GLUE).examples.map((e) => e.id));
    expect(hit.dataset).toEqual(loaded.dataset);
  });

  it('works without a cache', () => {
    const r = loadEncodedSplit({ task: 'RTE', split: 'dev', dir: GLUE, tokenizer, maxLength: 128, cacheDir: false });
    expect(r.cacheHit).toBe(false);
    expect(r.dataset.size).toBe(277);
  });
});
