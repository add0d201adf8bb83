/**
 * Paths read from files are untrusted: a merged model's tokenizer metadata, an artifacts manifest's
 * file names and a run's recorded artifacts folder may not lead out of their folder, nor to a FIFO
 * or device (whose reads block or never end).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readManifest } from '../../src/artifacts/generate.js';
import { exportDelta } from '../../src/export/export.js';
import { mergeFiles } from '../../src/export/merge.js';
import { META_TOKENIZER } from '../../src/export/metadata.js';
import { loadModel, saveModel } from '../../src/onnx/io.js';
import { Predictor } from '../../src/predict/predictor.js';
import { tmpDir } from '../helpers/paths.js';
import { fakeRun, FakeRun, writeBase } from '../export/helpers.js';

let dir: string;
let run: FakeRun;
let merged: string;

beforeAll(() => {
  dir = tmpDir('modtune-paths-');
  const base = writeBase(dir);
  run = fakeRun({ base, dir: path.join(dir, 'run'), train: 'layernorm', task: 'sst2' });
  const delta = exportDelta({ run: run.dir, out: path.join(dir, 'delta') }).dir;
  merged = path.join(dir, 'deploy', 'tuned.onnx');
  fs.mkdirSync(path.dirname(merged));
  mergeFiles({ base, delta, out: merged });
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** A copy of the merged model whose tokenizer metadata names `file`. */
function withTokenizer(file: string, name: string): string {
  const m = loadModel(merged);
  const tok = JSON.parse(m.metadata[META_TOKENIZER]!);
  m.metadata[META_TOKENIZER] = JSON.stringify({ ...tok, file, sha256: null });
  const out = path.join(path.dirname(merged), name);
  saveModel(m, out);
  return out;
}

/** A copy of the run's artifacts folder with `edit` applied to its manifest. */
function artifactsWith(name: string, edit: (m: Record<string, any>) => void): string {
  const copy = path.join(dir, name);
  fs.cpSync(run.artifacts, copy, { recursive: true });
  const file = path.join(copy, 'manifest.json');
  const m = JSON.parse(fs.readFileSync(file, 'utf8'));
  edit(m);
  fs.writeFileSync(file, JSON.stringify(m));
  return copy;
}

describe('untrusted paths', () => {
  it('predict refuses a merged model whose tokenizer metadata leaves its folder or names a FIFO or device', async () => {
    await expect(Predictor.load({ base: withTokenizer('/etc/passwd', 'abs.onnx') })).rejects.toThrow(/abs\.onnx: metadata 'modtune\.tokenizer' field 'file': path "\/etc\/passwd" leaves its folder/);
    await expect(Predictor.load({ base: withTokenizer('../../../../etc/passwd', 'up.onnx') })).rejects.toThrow(/leaves its folder/);
    fs.symlinkSync('/dev/zero', path.join(path.dirname(merged), 'zero.txt'));
    await expect(Predictor.load({ base: withTokenizer('zero.txt', 'zero.onnx') })).rejects.toThrow(/links outside its folder/);
    execFileSync('mkfifo', [path.join(path.dirname(merged), 'fifo.txt')]);
    await expect(Predictor.load({ base: withTokenizer('fifo.txt', 'fifo.onnx') })).rejects.toThrow(/fifo\.txt is a FIFO, expected a regular file/);
    // The untouched model still loads.
    const p = await Predictor.load({ base: merged });
    await p.release();
  });

  it('a manifest naming a file outside its folder is refused before export copies it into a delta', () => {
    const cases: [string, (m: Record<string, any>) => void, RegExp][] = [
      ['tok-abs', (m) => { m.tokenizer.file = '/etc/passwd'; }, /field 'tokenizer\.file': path "\/etc\/passwd" leaves its folder/],
      ['tok-up', (m) => { m.tokenizer.file = '../run/config.json'; }, /field 'tokenizer\.file'.*leaves its folder/],
      ['init-up', (m) => { m.initialValues = '../../etc/passwd'; }, /field 'initialValues'.*leaves its folder/],
      ['masks-abs', (m) => { m.masks = '/dev/zero'; }, /field 'masks'.*leaves its folder/],
      ['infer-abs', (m) => { m.native.infer.file = '/etc/hostname'; }, /field 'native\.infer\.file'.*leaves its folder/],
      ['weights-up', (m) => { m.native.weights = '../x.bin'; }, /field 'native\.weights'.*leaves its folder/],
    ];
    for (const [name, edit, want] of cases) {
      const art = artifactsWith(name, edit);
      expect(() => readManifest(art), name).toThrow(want);
      fs.writeFileSync(path.join(run.dir, 'config.json'), JSON.stringify({ artifacts: art, task: 'sst2', backend: 'native', seed: 42 }));
      expect(() => exportDelta({ run: run.dir, out: path.join(dir, `delta-${name}`) }), name).toThrow(want);
      expect(fs.existsSync(path.join(dir, `delta-${name}`)), name).toBe(false);
    }
    const linked = artifactsWith('tok-link', () => {});
    const tok = JSON.parse(fs.readFileSync(path.join(linked, 'manifest.json'), 'utf8')).tokenizer.file as string;
    fs.rmSync(path.join(linked, tok));
    fs.symlinkSync('/etc/passwd', path.join(linked, tok));
    expect(() => readManifest(linked)).toThrow(/links outside its folder/);
  });

  it('a run config may name an artifacts folder elsewhere, but only a real one', () => {
    const config = path.join(run.dir, 'config.json');
    const write = (artifacts: string) => fs.writeFileSync(config, JSON.stringify({ artifacts, task: 'sst2', backend: 'native', seed: 42 }));
    // Outside the run, as `train --artifacts DIR` records it: allowed.
    const elsewhere = path.join(dir, 'elsewhere');
    fs.cpSync(run.artifacts, elsewhere, { recursive: true });
    write(elsewhere);
    expect(exportDelta({ run: run.dir, out: path.join(dir, 'delta-elsewhere') }).dir).toBe(path.join(dir, 'delta-elsewhere'));
    write('/etc');
    expect(() => exportDelta({ run: run.dir, out: path.join(dir, 'delta-etc') })).toThrow(/\/etc: not an artifacts folder \(no manifest\.json\)/);
    write('/etc/passwd');
    expect(() => exportDelta({ run: run.dir, out: path.join(dir, 'delta-passwd') })).toThrow(/\/etc\/passwd is not a regular file|\/etc\/passwd is a .*expected a folder/);
    const fifoDir = path.join(dir, 'fifo-art');
    fs.mkdirSync(fifoDir);
    execFileSync('mkfifo', [path.join(fifoDir, 'manifest.json')]);
    write(fifoDir);
    expect(() => exportDelta({ run: run.dir, out: path.join(dir, 'delta-fifo') })).toThrow(/manifest\.json is a FIFO/);
    write(run.artifacts);
  });
});
