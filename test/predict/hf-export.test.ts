/**
 * predict takes a plain Hugging Face sequence-classification ONNX export (here optimum's DistilBERT
 * SST-2 export): labels from the config.json beside it, the tokenizer from the same folder.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { loadTokenizer } from '../../src/data/tokenizer.js';
import { Predictor } from '../../src/predict/predictor.js';
import { FIXTURES, tmpDir, VOCAB } from '../helpers/paths.js';
import { modtune } from '../export/helpers.js';

const EXPORT = path.join(FIXTURES, 'optimum_tiny-distilbert-sst2.onnx');
const CONFIG = path.join(FIXTURES, 'optimum_tiny-distilbert-sst2.config.json');
let dir: string;
let model: string;

beforeAll(() => {
  dir = tmpDir('modtune-hfexport-');
  model = path.join(dir, 'model.onnx');
  fs.copyFileSync(EXPORT, model);
  fs.copyFileSync(CONFIG, path.join(dir, 'config.json'));
  fs.copyFileSync(VOCAB, path.join(dir, 'vocab.txt'));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('predict with a Hugging Face export', () => {
  it('reads the labels from config.json and gives the export\'s own logits', async () => {
    const p = await Predictor.load({ base: model });
    expect(p.labels).toEqual(['NEGATIVE', 'POSITIVE']);
    expect(p.task).toBe('sst-2');
    const text = 'a gripping, beautifully shot film';
    const [pred] = await p.predict([text]);
    const enc = loadTokenizer(VOCAB).encode(text, undefined, 512);
    const session = await ort.InferenceSession.create(model);
    const ids = new ort.Tensor('int64', BigInt64Array.from(enc.inputIds.map(BigInt)), [1, enc.inputIds.length]);
    const feeds: Record<string, ort.Tensor> = { input_ids: ids, attention_mask: new ort.Tensor('int64', BigInt64Array.from(enc.inputIds.map(() => 1n)), [1, enc.inputIds.length]) };
    const want = Array.from((await session.run(feeds)).logits!.data as Float32Array);
    await session.release();
    expect(pred!.logits).toEqual(want);
    expect(pred!.label).toBe(want[1]! > want[0]! ? 'POSITIVE' : 'NEGATIVE');
    await p.release();
  });

  it('works from the CLI, and a config that disagrees with the logits is refused', () => {
    const r = modtune('predict', model, '--text', 'dull');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^sst-2: (NEGATIVE|POSITIVE) \(0\.\d{4}\); NEGATIVE 0\.\d{4}, POSITIVE 0\.\d{4}\n$/);
    const bad = path.join(dir, 'bad');
    fs.mkdirSync(bad);
    fs.copyFileSync(EXPORT, path.join(bad, 'model.onnx'));
    fs.copyFileSync(VOCAB, path.join(bad, 'vocab.txt'));
    fs.writeFileSync(path.join(bad, 'config.json'), JSON.stringify({ id2label: { 0: 'a', 1: 'b', 2: 'c' } }));
    const refused = modtune('predict', path.join(bad, 'model.onnx'), '--text', 'dull');
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/^modtune: .*config\.json: 3 labels, but the logits of .*model\.onnx have 2\n$/);
    const none = path.join(dir, 'none');
    fs.mkdirSync(none);
    fs.copyFileSync(EXPORT, path.join(none, 'model.onnx'));
    expect(modtune('predict', path.join(none, 'model.onnx'), '--text', 'x').stderr).toMatch(/no config\.json beside it naming its labels/);
  });
});
