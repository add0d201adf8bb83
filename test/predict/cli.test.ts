import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Predictor } from '../../src/predict/predictor.js';
import { tmpDir } from '../helpers/paths.js';
import { readTextsTsv } from '../../src/predict/tsv.js';
import { fakeRun, FakeRun, modtune, writeBase } from '../export/helpers.js';

let dir: string;
let base: string;
let sst: FakeRun;
let mnli: FakeRun;

beforeAll(() => {
  dir = tmpDir('modtune-predict-cli-');
  base = writeBase(dir);
  sst = fakeRun({ base, dir: path.join(dir, 'sst'), train: 'layernorm', task: 'sst2', noise: 0.3 });
  mnli = fakeRun({ base, dir: path.join(dir, 'mnli'), train: 'bias@1', task: 'mnli', noise: 0.3 });
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** A user error: exit 1 and exactly one line on stderr. */
function expectOneLineError(r: ReturnType<typeof modtune>, pattern: RegExp): void {
  expect(r.code).toBe(1);
  expect(r.stderr.split('\n').filter(Boolean)).toHaveLength(1);
  expect(r.stderr).toMatch(pattern);
}

describe('modtune export / merge / serve-model / predict', () => {
  it('goes from a run to predictions, merged and multi-task', async () => {
    const delta = path.join(dir, 'sst-delta');
    const e = modtune('export', sst.dir, '--out', delta);
    expect(e.stderr).toBe('');
    expect(e.code).toBe(0);
    expect(e.stdout).toMatch(/^wrote .*sst-delta\/delta\.safetensors \([\d.]+ KiB: 12 tensors, 194 values\) \+ vocab\.txt \+ delta\.json$/m);
    expect(e.stdout).toContain('checkpoint best (step 20): accuracy 0.8750');
    expect(e.stdout).toContain('task SST-2: 2 labels (0, 1), new head (in the delta)');

    const tuned = path.join(dir, 'deploy', 'tuned.onnx');
    const m = modtune('merge', base, delta, '--out', tuned);
    expect(m.code).toBe(0);
    expect(m.stdout).toMatch(/^wrote .*tuned\.onnx \([\d.]+ \w+\) \+ tuned\.vocab\.txt$/m);

    const p = modtune('predict', tuned, '--text', 'a gripping, beautifully shot film');
    expect(p.stderr).toBe('');
    const lib = await Predictor.load({ base: tuned });
    const [expected] = await lib.predict(['a gripping, beautifully shot film']);
    await lib.release();
    const prob = (i: number) => expected!.probabilities![i]!.toFixed(4);
    expect(p.stdout).toBe(`SST-2: ${expected!.label} (${prob(expected!.index!)}); 0 ${prob(0)}, 1 ${prob(1)}\n`);

    // Multi-task: the MNLI delta stored as differences; predictions through the multi model.
    const mnliDelta = path.join(dir, 'mnli-delta');
    expect(modtune('export', mnli.dir, '--out', mnliDelta, '--diff', '--checkpoint', 'last').code).toBe(0);
    const multi = path.join(dir, 'deploy', 'multi.onnx');
    const s = modtune('serve-model', base, '--tasks', delta, mnliDelta, '--out', multi);
    expect(s.code).toBe(0);
    expect(s.stdout).toContain('2 tasks: SST-2 (2 labels), MNLI (3 labels)');
    const tsv = path.join(dir, 'pairs.tsv');
    fs.writeFileSync(tsv, 'premise\thypothesis\nA man plays a guitar.\tA man makes music.\r\n\nThe sky is green.\tIt rained.\n');
    const j = modtune('predict', mnliDelta, '--base', multi, '--file', tsv, '--header', '--json', '--runtime', 'web');
    expect(j.stderr).toBe('');
    const rows = j.stdout.trim().split('\n').map((l) => JSON.parse(l));
    expect(rows.map((r) => [r.task, r.text, r.textPair])).toEqual([['MNLI', 'A man plays a guitar.', 'A man makes music.'], ['MNLI', 'The sky is green.', 'It rained.']]);
    expect(Object.keys(rows[0].probabilities)).toEqual(['entailment', 'neutral', 'contradiction']);
    const t = modtune('predict', mnliDelta, '--base', multi, '--file', tsv, '--header');
    const lines = t.stdout.trim().split('\n');
    expect(lines[0]).toBe('label\tp(entailment)\tp(neutral)\tp(contradiction)');
    expect(lines.slice(1).map((l) => l.split('\t')[0])).toEqual(rows.map((r) => r.label));
  });

  it('reports bad input in one line', () => {
    const delta = path.join(dir, 'sst-delta-2');
    expect(modtune('export', sst.dir, '--out', delta).code).toBe(0);
    expectOneLineError(modtune('predict', delta, '--base', base, '--text', 'a', '--text-pair', 'b'), /^modtune: task SST-2 takes one text, but input 1 is a text pair/);
    expectOneLineError(modtune('predict', delta, '--text', 'a'), /is a delta folder: say which base model to apply it to with --base BASE\.onnx/);
    const json = JSON.parse(fs.readFileSync(path.join(delta, 'delta.json'), 'utf8'));
    fs.writeFileSync(path.join(delta, 'delta.json'), JSON.stringify({ ...json, version: 3 }));
    expectOneLineError(modtune('merge', base, delta, '--out', path.join(dir, 'x.onnx')), /delta format version 3 is newer than this modtune reads \(1\); upgrade modtune/);
  });

  it('reads one- and two-column TSV inputs and refuses other widths', () => {
    const tsv = path.join(dir, 'inputs.tsv');
    fs.writeFileSync(tsv, '\uFEFFsentence\nfirst\r\n\nsecond\tpair\n');
    expect(readTextsTsv(tsv, { header: true })).toEqual([{ text: 'first' }, { text: 'second', textPair: 'pair' }]);
    expect(readTextsTsv(tsv)[0]).toEqual({ text: 'sentence' });
    fs.writeFileSync(tsv, 'a\tb\tc\n');
    expect(() => readTextsTsv(tsv)).toThrow(/inputs\.tsv:1: 3 tab-separated columns; expected one text or two \(a pair\)/);
    fs.writeFileSync(tsv, '\n\n');
    expect(() => readTextsTsv(tsv)).toThrow(/no input lines/);
  });
});
