/**
 * Numbers read from files are untrusted: NaN/Inf weights are found when a model is built, merged or
 * loaded (naming the tensor), and a merged model's labels must agree with its logits.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { generateArtifacts } from '../../src/artifacts/generate.js';
import { loadBase } from '../../src/export/apply.js';
import { exportDelta } from '../../src/export/export.js';
import { mergeFiles } from '../../src/export/merge.js';
import { META_TASK, META_TOKENIZER } from '../../src/export/metadata.js';
import { buildPulledModel } from '../../src/hub/convert.js';
import { writeSafetensors } from '../../src/bert/safetensors.js';
import { toHfConfig } from '../../src/bert/config.js';
import { loadModel, saveModel } from '../../src/onnx/io.js';
import { tensorFloat32 } from '../../src/onnx/tensor.js';
import { Predictor } from '../../src/predict/predictor.js';
import { tmpDir } from '../helpers/paths.js';
import { fakeRun, tinyConfig, writeBase } from '../export/helpers.js';

let dir: string;
let base: string;
let merged: string;

beforeAll(() => {
  dir = tmpDir('modtune-values-');
  base = writeBase(dir);
  const run = fakeRun({ base, dir: path.join(dir, 'run'), train: 'layernorm', task: 'sst2' });
  const delta = exportDelta({ run: run.dir, out: path.join(dir, 'delta') }).dir;
  merged = path.join(dir, 'tuned.onnx');
  mergeFiles({ base, delta, out: merged });
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** A copy of `file` with entry 3 of initializer `name` set to `value`. */
function poisoned(file: string, name: string, value: number, out: string): string {
  const m = loadModel(file);
  const t = m.graph.initializers.get(name)!;
  const data = Float32Array.from(tensorFloat32(t));
  data[3] = value;
  t.raw = new Uint8Array(data.buffer);
  saveModel(m, out);
  return out;
}

describe('non-finite weights', () => {
  const ln = 'bert.encoder.layer.1.output.LayerNorm.weight';

  it('are refused when a base is loaded for merge, artifacts or predict, naming the tensor', async () => {
    const bad = poisoned(base, ln, NaN, path.join(dir, 'nan-base.onnx'));
    expect(() => loadBase(bad)).toThrow(new RegExp(`nan-base\\.onnx: weight '${ln.replaceAll('.', '\\.')}' holds NaN at entry 3`));
    expect(() => mergeFiles({ base: bad, delta: path.join(dir, 'delta'), out: path.join(dir, 'm.onnx') })).toThrow(/holds NaN at entry 3/);
    expect(() => generateArtifacts({ model: bad, train: 'layernorm', task: 'sst2', out: path.join(dir, 'art-nan') })).toThrow(/holds NaN at entry 3/);
    expect(fs.existsSync(path.join(dir, 'art-nan'))).toBe(false);
    const inf = poisoned(merged, ln, -Infinity, path.join(dir, 'inf-merged.onnx'));
    fs.copyFileSync(path.join(dir, 'tuned.vocab.txt'), path.join(dir, 'inf-merged.vocab.txt'));
    await expect(Predictor.load({ base: inf })).rejects.toThrow(/inf-merged\.onnx: weight '.*' holds -Infinity at entry 3/);
  });

  it('are refused when a model is built from safetensors weights', () => {
    const folder = path.join(dir, 'hf');
    fs.mkdirSync(folder);
    const config = tinyConfig();
    fs.writeFileSync(path.join(folder, 'config.json'), JSON.stringify(toHfConfig(config)));
    const model = loadModel(base);
    const weights = new Map<string, { shape: number[]; data: Float32Array }>();
    for (const [name, t] of model.graph.initializers) {
      if (t.dataType === 1 && name.startsWith('bert.')) weights.set(name, { shape: t.dims, data: Float32Array.from(tensorFloat32(t)) });
    }
    weights.get('bert.pooler.dense.bias')!.data[3] = Infinity;
    writeSafetensors(path.join(folder, 'model.safetensors'), weights);
    expect(() => buildPulledModel(folder)).toThrow(/weight 'bert\.pooler\.dense\.bias' holds Infinity at entry 3/);
  });
});

describe('merged-model metadata', () => {
  function withMeta(key: string, edit: (v: Record<string, any>) => void, name: string): string {
    const m = loadModel(merged);
    const v = JSON.parse(m.metadata[key]!);
    edit(v);
    m.metadata[key] = JSON.stringify(v);
    const out = path.join(dir, name);
    saveModel(m, out);
    fs.copyFileSync(path.join(dir, 'tuned.vocab.txt'), path.join(dir, name.replace(/\.onnx$/, '.vocab.txt')));
    return out;
  }

  it('labels and numbers must agree with the model\'s logits', async () => {
    const five = withMeta(META_TASK, (t) => { t.head.numLabels = 5; t.labels = ['a', 'b', 'c', 'd', 'e']; }, 'five.onnx');
    await expect(Predictor.load({ base: five })).rejects.toThrow(/five\.onnx: metadata 'modtune\.task': the head has 5 outputs, but the model's logits have 2/);
    const labels = withMeta(META_TASK, (t) => { t.labels = ['only-one']; }, 'labels.onnx');
    await expect(Predictor.load({ base: labels })).rejects.toThrow(/field 'labels' should list 2 label names/);
    const kind = withMeta(META_TASK, (t) => { t.head = { kind: 'ranking' }; }, 'kind.onnx');
    await expect(Predictor.load({ base: kind })).rejects.toThrow(/field 'head\.kind' should be 'classification' or 'regression'/);
    const len = withMeta(META_TOKENIZER, (t) => { t.maxLength = 1e300; }, 'len.onnx');
    await expect(Predictor.load({ base: len })).rejects.toThrow(/metadata 'modtune\.tokenizer': field 'maxLength' should be an integer/);
    const ok = await Predictor.load({ base: merged });
    expect(ok.labels).toEqual(['0', '1']);
    await ok.release();
  });
});
