import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { GLUE_TASKS, getGlueSplit, getGlueTask } from '../../src/data/glue-tasks.js';
import { readGlueSplit } from '../../src/data/glue-reader.js';
import { resolveGlueDir } from '../../src/data/paths.js';
import { formatSubmission } from '../../src/data/submission.js';
import { ModtuneError } from '../../src/errors.js';
import { GLUE, tmpDir } from '../helpers/paths.js';

/** Write `<root>/<folder>/<file>` and return the root. */
function writeTask(root: string, folder: string, files: Record<string, string>): string {
  fs.mkdirSync(path.join(root, folder), { recursive: true });
  for (const [name, text] of Object.entries(files)) fs.writeFileSync(path.join(root, folder, name), text);
  return root;
}
const row = (...cells: string[]) => `${cells.join('\t')}\n`;

describe('task registry', () => {
  it('finds tasks by any spelling', () => {
    for (const name of ['sst2', 'SST-2', 'sst-2', 'Sst_2']) expect(getGlueTask(name).name).toBe('SST-2');
    expect(getGlueTask('stsb').name).toBe('STS-B');
    expect(getGlueTask('STS-B').folder).toBe('STS-B');
    expect(getGlueTask('mnli').splits.dev_mismatched!.file).toBe('dev_mismatched.tsv');
    expect(() => getGlueTask('squad')).toThrow(/unknown GLUE task 'squad': expected one of CoLA, SST-2/);
  });

  it('describes labels, metrics and submissions', () => {
    expect(GLUE_TASKS.MNLI.labels).toEqual(['entailment', 'neutral', 'contradiction']);
    expect(GLUE_TASKS['STS-B'].regression).toBe(true);
    expect(GLUE_TASKS.MRPC.metrics).toEqual(['f1', 'accuracy']);
    expect(GLUE_TASKS.CoLA.mainMetric).toBe('mcc');
    expect(GLUE_TASKS.MNLI.submission.files).toEqual({ test_matched: 'MNLI-m.tsv', test_mismatched: 'MNLI-mm.tsv' });
    expect(getGlueSplit(GLUE_TASKS.MNLI, 'dev').name).toBe('dev_matched');
    expect(() => getGlueSplit(GLUE_TASKS.RTE, 'dev_matched')).toThrow(/no split 'dev_matched'/);
  });
});

describe('official files in ../shared/glue', () => {
  // Row counts from docs/glue.md (header excluded).
  const sizes: Array<[string, string, number]> = [
    ['CoLA', 'train', 8551], ['CoLA', 'dev', 1043], ['CoLA', 'test', 1063],
    ['SST-2', 'train', 67349], ['SST-2', 'dev', 872], ['SST-2', 'test', 1821],
    ['MRPC', 'train', 3668], ['MRPC', 'dev', 408], ['MRPC', 'test', 1725],
    ['STS-B', 'train', 5749], ['STS-B', 'dev', 1500], ['STS-B', 'test', 1379],
    ['RTE', 'train', 2490], ['RTE', 'dev', 277], ['RTE', 'test', 3000],
    ['WNLI', 'train', 635], ['WNLI', 'dev', 71], ['WNLI', 'test', 146],
    ['QNLI', 'dev', 5463], ['QNLI', 'test', 5463],
  ];
  it.each(sizes)('%s %s has %i rows', (task, split, n) => {
    const { examples, skipped } = readGlueSplit(task, split, GLUE);
    expect(examples).toHaveLength(n);
    expect(skipped).toBe(0);
    const t = getGlueTask(task);
    const isTest = split === 'test';
    // Counted first, asserted once: a per-row expect costs more than reading the file.
    expect(examples.filter((e) => (e.label === undefined) !== isTest)).toEqual([]);
    expect(examples.filter((e) => (e.textB === undefined) !== (t.kind === 'single'))).toEqual([]);
    expect(new Set(examples.map((e) => e.id)).size).toBe(n);
  });

  it('reads the right columns', () => {
    // CoLA has no header: the first line is data (source, label, original label, sentence).
    const cola = readGlueSplit('cola', 'train', GLUE).examples[0]!;
    expect(cola).toEqual({ id: '0', textA: "Our friends won't buy this analysis, let alone the next one we propose.", label: 1 });
    // MRPC starts with a byte-order mark; quotes stay as they are (no CSV quoting).
    const mrpc = readGlueSplit('MRPC', 'train', GLUE).examples[0]!;
    expect(mrpc.label).toBe(1);
    expect(mrpc.textA).toBe('Amrozi accused his brother, whom he called "the witness", of deliberately distorting his evidence.');
    expect(mrpc.textB!.startsWith('Referring to him as only "the witness"')).toBe(true);
    const mrpcDev = readGlueSplit('MRPC', 'dev', GLUE).examples[0]!;
    expect(mrpcDev.textB).toBe('"The foodservice pie business does not fit our long-term growth strategy.');
    // STS-B: score in the last column, the index as id.
    const sts = readGlueSplit('stsb', 'dev', GLUE).examples[1]!;
    expect(sts).toEqual({ id: '1', textA: 'A young child is riding a horse.', textB: 'A child is riding a horse.', label: 4.75 });
    const qnli = readGlueSplit('qnli', 'dev', GLUE).examples[1]!;
    expect(qnli.label).toBe(1); // not_entailment
    // Test splits keep the index column for submission files.
    const mrpcTest = readGlueSplit('mrpc', 'test', GLUE).examples;
    expect(mrpcTest[5]!.id).toBe('5');
    expect(readGlueSplit('sst2', 'test', GLUE).examples[0]).toEqual({ id: '0', textA: 'uneasy mishmash of styles and genres .' });
    // CoLA dev has no final newline; its last row still counts.
    const colaDev = readGlueSplit('cola', 'dev', GLUE).examples;
    expect(colaDev[colaDev.length - 1]!.textA.endsWith('.')).toBe(true);
  });

  it('says where to get a missing split', () => {
    expect(() => readGlueSplit('QNLI', 'train', GLUE)).toThrow(/QNLI train: .*QNLI\/train\.tsv not found; run `modtune data pull QNLI` or pass --data DIR/);
  });
});

describe('layouts of tasks not in shared (files written here)', () => {
  it('reads MNLI train, both dev sets and both test sets', () => {
    const root = tmpDir();
    const pre = (i: number, g: string, s1: string, s2: string) => [String(i), `${i}1`, `${i}1e`, g, '( ( A b ) )', '( c )', '(ROOT (S))', '(ROOT (NP))', s1, s2];
    const head = ['index', 'promptID', 'pairID', 'genre', 'sentence1_binary_parse', 'sentence2_binary_parse', 'sentence1_parse', 'sentence2_parse', 'sentence1', 'sentence2'];
    writeTask(root, 'MNLI', {
      'train.tsv': row(...head, 'label1', 'gold_label') +
        row(...pre(0, 'fiction', 'He said "go".', 'He spoke.'), 'entailment', 'entailment') +
        row(...pre(1, 'travel', 'A cat.', 'A dog.'), 'contradiction', 'contradiction'),
      'dev_matched.tsv': row(...head, 'label1', 'label2', 'label3', 'label4', 'label5', 'gold_label') +
        row(...pre(7, 'slate', 'x', 'y'), 'neutral', 'neutral', 'entailment', 'neutral', 'neutral', 'neutral'),
      'dev_mismatched.tsv': row(...head, 'label1', 'label2', 'label3', 'label4', 'label5', 'gold_label') +
        row(...pre(9, 'letters', 'p', 'q'), 'contradiction', 'contradiction', 'contradiction', 'neutral', 'contradiction', 'contradiction'),
      'test_matched.tsv': row(...head) + row(...pre(0, 'slate', 'm1', 'm2')),
      'test_mismatched.tsv': row(...head) + row(...pre(0, 'letters', 'mm1', 'mm2')) + row(...pre(1, 'letters', 'mm3', 'mm4')),
    });
    expect(readGlueSplit('MNLI', 'train', root)).toEqual({
      examples: [
        { id: '0', textA: 'He said "go".', textB: 'He spoke.', label: 0 },
        { id: '1', textA: 'A cat.', textB: 'A dog.', label: 2 },
      ],
      skipped: 0,
    });
    expect(readGlueSplit('mnli', 'dev_matched', root).examples).toEqual([{ id: '7', textA: 'x', textB: 'y', label: 1 }]);
    expect(readGlueSplit('mnli', 'dev_mismatched', root).examples).toEqual([{ id: '9', textA: 'p', textB: 'q', label: 2 }]);
    expect(readGlueSplit('mnli', 'test_matched', root).examples).toEqual([{ id: '0', textA: 'm1', textB: 'm2' }]);
    expect(readGlueSplit('mnli', 'test_mismatched', root).examples.map((e) => e.textB)).toEqual(['mm2', 'mm4']);
  });

  it('skips and counts QQP\'s malformed rows, as the reference loaders do', () => {
    const root = tmpDir();
    writeTask(root, 'QQP', {
      'train.tsv': row('id', 'qid1', 'qid2', 'question1', 'question2', 'is_duplicate') +
        row('201', '1', '2', 'How do I learn "Go"?', 'What is the best way to learn Go?', '1') +
        // A question broken by a newline in the official file: two short fragments.
        'x\t3\t4\tWhat is\n' + '\tWas Muhammad a real historical figure?\t0\n' +
        row('202', '5', '6', 'Why?', 'Why not?', 'maybe') +
        row('203', '7', '8', 'A?', 'B?', '0'),
      'dev.tsv': row('id', 'qid1', 'qid2', 'question1', 'question2', 'is_duplicate') + row('9', '10', '11', 'q1', 'q2', '0'),
      'test.tsv': row('id', 'question1', 'question2') + row('0', 'Is it?', 'Is it not?'),
    });
    const train = readGlueSplit('QQP', 'train', root);
    expect(train.skipped).toBe(3);
    expect(train.examples).toEqual([
      { id: '201', textA: 'How do I learn "Go"?', textB: 'What is the best way to learn Go?', label: 1 },
      { id: '203', textA: 'A?', textB: 'B?', label: 0 },
    ]);
    expect(readGlueSplit('qqp', 'test', root)).toEqual({ examples: [{ id: '0', textA: 'Is it?', textB: 'Is it not?' }], skipped: 0 });
  });

  it('reads QNLI train', () => {
    const root = tmpDir();
    writeTask(root, 'QNLI', {
      'train.tsv': row('index', 'question', 'sentence', 'label') +
        row('0', 'When?', 'In 1990.', 'entailment') + row('1', 'Who?', 'Nobody knows "why".', 'not_entailment'),
    });
    expect(readGlueSplit('QNLI', 'train', root).examples).toEqual([
      { id: '0', textA: 'When?', textB: 'In 1990.', label: 0 },
      { id: '1', textA: 'Who?', textB: 'Nobody knows "why".', label: 1 },
    ]);
  });
});

describe('malformed files', () => {
  it('names file and line for a bad row', () => {
    const root = tmpDir();
    writeTask(root, 'RTE', { 'dev.tsv': row('index', 'sentence1', 'sentence2', 'label') + row('0', 'a', 'b', 'entailment') + row('1', 'a', 'b') });
    const file = path.join(root, 'RTE', 'dev.tsv');
    expect(() => readGlueSplit('RTE', 'dev', root)).toThrow(`${file}:3: expected 4 tab-separated columns, found 3`);
    writeTask(root, 'RTE', { 'dev.tsv': row('index', 'sentence1', 'sentence2', 'label') + row('0', 'a', 'b', 'neutral') });
    expect(() => readGlueSplit('RTE', 'dev', root)).toThrow(`${file}:2: label 'neutral' is not one of entailment, not_entailment`);
    writeTask(root, 'STS-B', {
      'dev.tsv': row('index', 'genre', 'filename', 'year', 'old_index', 'source1', 'source2', 'sentence1', 'sentence2', 'score') +
        row('0', 'g', 'f', 'y', '0', 'n', 'n', 'a', 'b', '7.5'),
    });
    expect(() => readGlueSplit('STS-B', 'dev', root)).toThrow(/STS-B\/dev\.tsv:2: score '7\.5' is not a number in \[0, 5\]/);
    writeTask(root, 'CoLA', { 'train.tsv': row('gj04', '1', '', 'Fine.') + row('gj04', 'x', '', 'Bad label.') });
    expect(() => readGlueSplit('CoLA', 'train', root)).toThrow(/CoLA\/train\.tsv:2: label 'x'/);
  });

  it('refuses a file of another layout by its header', () => {
    const root = tmpDir();
    writeTask(root, 'WNLI', { 'train.tsv': row('index', 'premise', 'hypothesis', 'label') + row('0', 'a', 'b', '1') });
    expect(() => readGlueSplit('WNLI', 'train', root)).toThrow(/WNLI\/train\.tsv:1: header column 2 is 'premise', expected 'sentence1'/);
  });

  it('accepts CRLF line ends', () => {
    const root = tmpDir();
    writeTask(root, 'SST-2', { 'dev.tsv': 'sentence\tlabel\r\ngood film \t1\r\nbad \t0\r\n' });
    expect(readGlueSplit('SST-2', 'dev', root).examples).toEqual([
      { id: '0', textA: 'good film ', label: 1 },
      { id: '1', textA: 'bad ', label: 0 },
    ]);
  });
});

describe('resolveGlueDir', () => {
  const saved = { ...process.env };
  const savedCwd = process.cwd();
  afterEach(() => {
    process.env = { ...saved };
    process.chdir(savedCwd);
  });

  it('prefers --data, then MODTUNE_GLUE_DIR, then ./data/glue, then ../shared/glue', () => {
    const work = tmpDir();
    const fromEnv = writeTask(path.join(work, 'env'), 'RTE', {});
    const local = writeTask(path.join(work, 'proj', 'data', 'glue'), 'RTE', {});
    const shared = writeTask(path.join(work, 'shared', 'glue'), 'CoLA', {});
    process.env.MODTUNE_CACHE = path.join(work, 'cache');
    process.chdir(path.join(work, 'proj'));
    process.env.MODTUNE_GLUE_DIR = fromEnv;
    expect(resolveGlueDir('rte', { data: local })).toBe(local);
    expect(resolveGlueDir('rte')).toBe(fromEnv);
    delete process.env.MODTUNE_GLUE_DIR;
    expect(resolveGlueDir('rte')).toBe(local);
    expect(resolveGlueDir('cola')).toBe(shared);
    // --data may name the task folder itself.
    expect(resolveGlueDir('rte', { data: path.join(local, 'RTE') })).toBe(path.join(local, 'RTE'));
  });

  it('says where it looked and how to get the data', () => {
    const work = tmpDir();
    process.env.MODTUNE_CACHE = path.join(work, 'cache');
    delete process.env.MODTUNE_GLUE_DIR;
    process.chdir(work);
    let message = '';
    try {
      resolveGlueDir('MNLI');
    } catch (e) {
      expect(e).toBeInstanceOf(ModtuneError);
      message = (e as Error).message;
    }
    expect(message).toContain(`GLUE MNLI data not found (looked in ${path.join(work, 'data', 'glue', 'MNLI')}`);
    expect(message).toContain(path.join(work, 'cache', 'glue', 'MNLI'));
    expect(message).toContain('run `modtune data pull MNLI` or pass --data DIR');
    expect(() => resolveGlueDir('cola', { data: path.join(work, 'nothing') })).toThrow(/looked in .*nothing\/CoLA\)/);
  });
});

describe('submission files', () => {
  it('writes index and class name (or score) per test row', () => {
    expect(formatSubmission('RTE', 'test', ['0', '1'], [1, 0])).toEqual({ fileName: 'RTE.tsv', text: 'index\tprediction\n0\tnot_entailment\n1\tentailment\n' });
    expect(formatSubmission('MNLI', 'test_mismatched', ['4'], [2]).fileName).toBe('MNLI-mm.tsv');
    expect(formatSubmission('STS-B', 'test', ['0', '1', '2'], [3.14159, -0.2, 5.7]).text).toBe('index\tprediction\n0\t3.142\n1\t0.000\n2\t5.000\n');
    expect(() => formatSubmission('CoLA', 'dev', ['0'], [1])).toThrow(/not a test split/);
    expect(() => formatSubmission('CoLA', 'test', ['0'], [2])).toThrow(/expected a class index below 2/);
  });
});
