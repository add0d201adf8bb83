/** The one rule every command's output goes through (src/util/output-guard.ts). */
import { describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { checkOutputFile, checkOutputFolder, jsonHas, realish, type FolderKind } from '../../src/util/output-guard.js';
import { tmpDir } from '../helpers/paths.js';

const KIND: FolderKind = {
  name: 'a thing folder', marker: 'thing.json', recognise: (t) => jsonHas(t, { format: (v) => v === 'thing' }),
  partialProof: '.lock', partialEntry: (n) => n === '.lock' || n === 'part',
};

describe('checkOutputFolder', () => {
  it('tells absent, empty, ours (with --force only) and partial apart', () => {
    const root = tmpDir();
    expect(checkOutputFolder(path.join(root, 'new'), KIND)).toBe('absent');
    expect(checkOutputFolder(root, KIND)).toBe('empty');
    fs.writeFileSync(path.join(root, 'thing.json'), '{"format": "thing"}');
    expect(() => checkOutputFolder(root, KIND)).toThrow(`--out ${root} holds a thing folder; pass --force to replace it, or choose another --out`);
    expect(checkOutputFolder(root, KIND, { force: true })).toBe('ours');
    const partial = tmpDir();
    fs.writeFileSync(path.join(partial, '.lock'), '');
    fs.mkdirSync(path.join(partial, 'part'));
    expect(checkOutputFolder(partial, KIND)).toBe('partial');
    // Without the proof, the same entries are someone's folder.
    fs.rmSync(path.join(partial, '.lock'));
    expect(() => checkOutputFolder(partial, KIND, { force: true })).toThrow(/is not empty and is not a thing folder \(no thing\.json written by modtune\)/);
  });

  it('a marker file modtune did not write does not make a folder replaceable', () => {
    const root = tmpDir();
    fs.writeFileSync(path.join(root, 'thing.json'), '{"format": "other"}');
    expect(() => checkOutputFolder(root, KIND, { force: true })).toThrow(/is not empty and is not a thing folder/);
  });

  it('follows links: a link to a folder holding an input is that folder', () => {
    const root = tmpDir();
    const inputs = path.join(root, 'inputs');
    fs.mkdirSync(inputs);
    fs.writeFileSync(path.join(inputs, 'model.onnx'), 'x');
    const link = path.join(root, 'link');
    fs.symlinkSync(inputs, link);
    const input = { path: path.join(inputs, 'model.onnx'), what: 'the model' };
    expect(() => checkOutputFolder(link, KIND, { force: true, inputs: [input] })).toThrow(`--out ${link} holds the model ${input.path}, an input of this command; choose another --out`);
    expect(() => checkOutputFolder(path.join(link, '..'), KIND, { force: true, inputs: [input] })).toThrow(/holds the model/);
    expect(realish(path.join(link, 'not-yet', 'deeper'))).toBe(path.join(fs.realpathSync(inputs), 'not-yet', 'deeper'));
  });

  it('a file where a folder should be is refused', () => {
    const file = path.join(tmpDir(), 'f');
    fs.writeFileSync(file, 'x');
    expect(() => checkOutputFolder(file, KIND)).toThrow(`--out ${file} exists and is not a folder; expected a thing folder or a new path`);
  });
});

describe('checkOutputFile', () => {
  it('refuses an input or a companion that is one; an existing file only with --force and only its own', () => {
    const root = tmpDir();
    const input = path.join(root, 'in.bin');
    fs.writeFileSync(input, 'x');
    const o = { name: 'a thing file', recognise: (f: string) => fs.readFileSync(f, 'utf8') === 'thing', inputs: [{ path: input, what: 'the input' }] };
    expect(() => checkOutputFile(input, o)).toThrow(`--out ${input} is the input, an input of this command; choose another --out`);
    const out = path.join(root, 'out.bin');
    expect(() => checkOutputFile(out, { ...o, companions: [input] })).toThrow(`--out ${out} (writing ${input}) is the input, an input of this command; choose another --out`);
    expect(checkOutputFile(out, o)).toBe(false);
    fs.writeFileSync(out, 'thing');
    expect(() => checkOutputFile(out, o)).toThrow(`--out ${out} exists (a thing file); pass --force to replace it, or choose another --out`);
    expect(checkOutputFile(out, { ...o, force: true })).toBe(true);
    fs.writeFileSync(out, 'mine');
    expect(() => checkOutputFile(out, { ...o, force: true })).toThrow(`--out ${out} exists and is not a thing file; choose another --out (--force replaces only a thing file)`);
  });
});
