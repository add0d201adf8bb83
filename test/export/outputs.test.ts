/**
 * merge and serve-model write a model file: never over one of their inputs (the base, its external
 * data, a delta's files), an existing file only with --force and only when the command wrote it,
 * and serve-model takes each delta once.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { exportDelta } from '../../src/export/export.js';
import { mergeFiles } from '../../src/export/merge.js';
import { META_DELTA_SHA } from '../../src/export/metadata.js';
import { serveModelFiles } from '../../src/export/multitask.js';
import { loadModel, saveModel } from '../../src/onnx/io.js';
import { readModelHeader } from '../../src/onnx/model-header.js';
import { tmpDir } from '../helpers/paths.js';
import { fakeRun, writeBase } from './helpers.js';

let dir: string;
let base: string;
let delta: string;
let other: string;

beforeAll(() => {
  dir = tmpDir('modtune-outputs-');
  base = writeBase(path.join(dir, 'base'));
  const run = fakeRun({ base, dir: path.join(dir, 'run'), train: 'layernorm', task: 'sst2' });
  delta = exportDelta({ run: run.dir, out: path.join(dir, 'delta') }).dir;
  const run2 = fakeRun({ base, dir: path.join(dir, 'run2'), train: 'bias', task: 'sst2', seed: 3 });
  other = exportDelta({ run: run2.dir, out: path.join(dir, 'delta2') }).dir;
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const bytesOf = (f: string) => fs.readFileSync(f);

describe('merge --out', () => {
  it('is never one of the delta\'s files or the base\'s external data, with or without --force', () => {
    const external = path.join(dir, 'ext', 'base.onnx');
    fs.mkdirSync(path.dirname(external));
    saveModel(loadModel(base), external, { externalData: true });
    const data = `${external}_data`;
    expect(fs.existsSync(data)).toBe(true);
    const cases: Array<[string, string, string]> = [
      [external, external, 'the base model'],
      [data, external, "the base model's external data"],
      [path.join(delta, 'delta.json'), base, "the delta's delta.json"],
      [path.join(delta, 'delta.safetensors'), base, "the delta's delta.safetensors"],
      [path.join(delta, 'vocab.txt'), base, "the delta's tokenizer"],
    ];
    for (const [out, b, what] of cases) {
      const before = bytesOf(out);
      for (const force of [false, true]) {
        expect(() => mergeFiles({ base: b, delta, out, force })).toThrow(`--out ${out} is ${what}, an input of this command; choose another --out`);
      }
      expect(bytesOf(out).equals(before)).toBe(true);
    }
  });

  it('refuses to overwrite without --force; --force replaces only a model merge wrote', () => {
    const out = path.join(dir, 'merged', 'tuned.onnx');
    mergeFiles({ base, delta, out });
    expect(readModelHeader(out)).toMatchObject({ producerName: 'modtune', metadata: { [META_DELTA_SHA]: expect.any(String) } });
    const first = bytesOf(out);
    expect(() => mergeFiles({ base, delta: other, out })).toThrow(`--out ${out} exists (a model written by modtune merge); pass --force to replace it, or choose another --out`);
    expect(bytesOf(out).equals(first)).toBe(true);
    mergeFiles({ base, delta: other, out, force: true });
    expect(bytesOf(out).equals(first)).toBe(false);

    // A file of the user's (here: the base model itself, copied) is not what merge writes.
    const mine = path.join(dir, 'merged', 'mine.onnx');
    fs.copyFileSync(base, mine);
    for (const force of [false, true]) {
      expect(() => mergeFiles({ base, delta, out: mine, force })).toThrow(`--out ${mine} exists and is not a model written by modtune merge; choose another --out (--force replaces only a model written by modtune merge)`);
    }
    expect(bytesOf(mine).equals(bytesOf(base))).toBe(true);
    expect(() => mergeFiles({ base, delta, out: path.join(dir, 'merged') })).toThrow(`--out ${path.join(dir, 'merged')} exists and is not a regular file; expected a new file path or a model written by modtune merge`);
  });
});

describe('serve-model', () => {
  it('refuses the same delta twice, also from another folder', () => {
    const copy = path.join(dir, 'delta-copy');
    fs.cpSync(delta, copy, { recursive: true });
    const out = path.join(dir, 'served', 'multi.onnx');
    for (const again of [delta, copy]) {
      expect(() => serveModelFiles({ base, deltas: [delta, other, again], out })).toThrow(new RegExp(`^${again} is the same delta as ${delta} \\(delta\\.safetensors sha256 [0-9a-f]{12}…\\); list each delta once$`));
    }
    expect(fs.existsSync(out)).toBe(false);
  });

  it('refuses an --out that is an input, and an existing file without --force or not its own', () => {
    const out = path.join(dir, 'served', 'multi.onnx');
    expect(() => serveModelFiles({ base, deltas: [delta, other], out: path.join(other, 'delta.json') })).toThrow(/is the delta's delta\.json, an input of this command/);
    serveModelFiles({ base, deltas: [delta, other], out });
    const first = bytesOf(out);
    expect(() => serveModelFiles({ base, deltas: [other], out })).toThrow(`--out ${out} exists (a model written by modtune serve-model); pass --force to replace it, or choose another --out`);
    expect(bytesOf(out).equals(first)).toBe(true);
    serveModelFiles({ base, deltas: [other], out, force: true });
    expect(bytesOf(out).equals(first)).toBe(false);
    // A merged model is not what serve-model writes.
    const merged = path.join(dir, 'served', 'merged.onnx');
    mergeFiles({ base, delta, out: merged });
    expect(() => serveModelFiles({ base, deltas: [delta], out: merged, force: true })).toThrow(/exists and is not a model written by modtune serve-model/);
  });
});

describe('readModelHeader', () => {
  it('reads producer and metadata of a model without loading it, and nothing from a non-model', () => {
    const merged = path.join(dir, 'header', 'tuned.onnx');
    mergeFiles({ base, delta, out: merged });
    const full = loadModel(merged);
    expect(readModelHeader(merged)).toEqual({ producerName: full.producerName, metadata: full.metadata });
    const junk = path.join(dir, 'header', 'junk.onnx');
    fs.writeFileSync(junk, 'this is not a protobuf\n');
    expect(readModelHeader(junk)).toBeNull();
  });
});
