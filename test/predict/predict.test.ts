import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadTokenizer } from '../../src/data/tokenizer.js';
import { exportDelta } from '../../src/export/export.js';
import { mergeFiles } from '../../src/export/merge.js';
import { readDelta } from '../../src/export/delta.js';
import { Predictor } from '../../src/predict/predictor.js';
import { tmpDir, VOCAB } from '../helpers/paths.js';
import { fakeRun, maxAbsDiff, modelLogits, writeBase } from '../export/helpers.js';

let dir: string;
let base: string;
let sst: { delta: string; merged: string };
let mrpc: { delta: string; merged: string };

function make(name: string, taskName: string, train: string) {
  const run = fakeRun({ base, dir: path.join(dir, name), train, task: taskName, noise: 0.3 });
  const delta = exportDelta({ run: run.dir, out: path.join(run.dir, 'delta') }).dir;
  const merged = path.join(run.dir, 'tuned.onnx');
  mergeFiles({ base, delta, out: merged });
  return { delta, merged };
}

beforeAll(() => {
  dir = tmpDir('modtune-predict-');
  base = writeBase(dir);
  sst = make('sst', 'sst2', 'layernorm');
  mrpc = make('mrpc', 'mrpc', 'bias');
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const TEXTS = ['a gripping, beautifully shot film', 'dull', 'the plot goes nowhere and the actors seem to know it, which is worse', 'fine.', 'I laughed, I cried, I left early'];

describe('Predictor', () => {
  it('tokenizes with the task tokenizer and turns logits into labels and probabilities', async () => {
    const p = await Predictor.load({ base: sst.merged });
    expect(p.tasks).toEqual(['SST-2']);
    expect(p.labels).toEqual(['0', '1']);
    const tok = loadTokenizer(VOCAB);
    const preds = await p.predict([TEXTS[0]!]);
    const enc = tok.encode(TEXTS[0]!, undefined, 64);
    expect(p.encode([TEXTS[0]!])[0]).toEqual(enc);
    const logits = await modelLogits(sst.merged, { inputIds: [enc.inputIds], tokenTypeIds: [enc.tokenTypeIds] });
    expect(maxAbsDiff(preds[0]!.logits, logits)).toBeLessThanOrEqual(1e-6);
    const probs = preds[0]!.probabilities!;
    expect(probs.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 12);
    expect(probs[1]! / probs[0]!).toBeCloseTo(Math.exp(logits[1]! - logits[0]!), 6);
    expect(preds[0]!.label).toBe(logits[1]! > logits[0]! ? '1' : '0');
    await p.release();
  });

  it('batches (padding does not change results) and truncates to the task\'s maximum length', async () => {
    const p = await Predictor.load({ base: sst.merged, batchSize: 2 });
    const long = Array.from({ length: 200 }, () => 'word').join(' ');
    const all = await p.predict([...TEXTS, long]);
    expect(p.encode([long])[0]!.inputIds).toHaveLength(64);
    for (const [i, t] of [...TEXTS, long].entries()) {
      const alone = await p.predict([t]);
      expect(maxAbsDiff(alone[0]!.logits, all[i]!.logits), t).toBeLessThanOrEqual(1e-5);
    }
    await p.release();
  });

  it('gives the same predictions on onnxruntime-web (wasm) as on onnxruntime-node', async () => {
    for (const [model, inputs] of [[sst.merged, TEXTS], [mrpc.merged, [['one text', 'another text'], ['same', 'same']]]] as const) {
      const node = await Predictor.load({ base: model, runtime: 'node' });
      const web = await Predictor.load({ base: model, runtime: 'web' });
      expect(web.runtimeName).toBe('web');
      const a = await node.predict(inputs as never);
      const b = await web.predict(inputs as never);
      expect(maxAbsDiff(a.flatMap((x) => x.logits), b.flatMap((x) => x.logits))).toBeLessThanOrEqual(1e-5);
      expect(b.map((x) => x.label)).toEqual(a.map((x) => x.label));
      await Promise.all([node.release(), web.release()]);
    }
  });

  it('a delta on its base equals the merged model', async () => {
    const p = await Predictor.load({ base, deltas: [mrpc.delta] });
    const m = await Predictor.load({ base: mrpc.merged });
    const pairs: [string, string][] = [['He said hello.', 'He greeted them.'], ['Rain today', 'The market closed up']];
    expect(maxAbsDiff((await p.predict(pairs)).flatMap((x) => x.logits), (await m.predict(pairs)).flatMap((x) => x.logits))).toBeLessThanOrEqual(1e-5);
    await Promise.all([p.release(), m.release()]);
  });

  it('rejects a text pair for a single-sentence task and a single text for a pair task', async () => {
    const p = await Predictor.load({ base: sst.merged });
    await expect(p.predict([['a', 'b']])).rejects.toThrow('task SST-2 takes one text, but input 1 is a text pair; drop the second text');
    const q = await Predictor.load({ base: mrpc.merged });
    await expect(q.predict(['x', ['a', 'b']])).rejects.toThrow('task MRPC takes a text pair, but input 1 has one text; give the second text too');
    expect(() => p.useTask('MNLI')).toThrow("no task 'MNLI' loaded; tasks: SST-2");
    await Promise.all([p.release(), q.release()]);
  });

  it('refuses a bad delta: another base, corrupt or truncated tensors, a newer format', async () => {
    const copy = (name: string) => {
      const d = path.join(dir, name);
      fs.cpSync(sst.delta, d, { recursive: true });
      return d;
    };
    const other = writeBase(path.join(dir, 'other'), { seed: 4 });
    await expect(Predictor.load({ base: other, deltas: [sst.delta] })).rejects.toThrow(/made for base sha256 [0-9a-f]{12}…, but .* has [0-9a-f]{12}…; pass --force/);

    const corrupt = copy('corrupt');
    const file = path.join(corrupt, 'delta.safetensors');
    const bytes = fs.readFileSync(file);
    bytes[bytes.length - 3]! ^= 0xff;
    fs.writeFileSync(file, bytes);
    expect(() => readDelta(corrupt)).toThrow(/delta\.safetensors: sha256 [0-9a-f]{12}… does not match delta\.json \([0-9a-f]{12}…\); the file is corrupt or was replaced/);

    const truncated = copy('truncated');
    const t = path.join(truncated, 'delta.safetensors');
    fs.writeFileSync(t, fs.readFileSync(t).subarray(0, 100));
    expect(() => readDelta(truncated)).toThrow(/delta\.safetensors: safetensors header length \d+ exceeds the file size \(100 bytes\); the file is truncated/);
    fs.writeFileSync(t, fs.readFileSync(path.join(sst.delta, 'delta.safetensors')).subarray(0, -8));
    expect(() => readDelta(truncated)).toThrow(/lie outside the data section/);

    const newer = copy('newer');
    const json = JSON.parse(fs.readFileSync(path.join(newer, 'delta.json'), 'utf8'));
    fs.writeFileSync(path.join(newer, 'delta.json'), JSON.stringify({ ...json, version: 2 }));
    expect(() => readDelta(newer)).toThrow(/delta\.json: delta format version 2 is newer than this modtune reads \(1\); upgrade modtune/);
    expect(() => readDelta(dir)).toThrow(/not a delta folder \(no delta\.json\)/);
  });
});
