/**
 * What ONNX Runtime would report late and in its own words is refused when the model is loaded:
 * a maximum length past the position table (the command's, a delta's, a merged model's), a graph
 * input no one defines, an opset the runtimes cannot run.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { generateArtifacts, readManifest } from '../../src/artifacts/generate.js';
import { exportDelta } from '../../src/export/export.js';
import { mergeFiles } from '../../src/export/merge.js';
import { META_TOKENIZER } from '../../src/export/metadata.js';
import { loadModel, saveModel } from '../../src/onnx/io.js';
import { Predictor } from '../../src/predict/predictor.js';
import { train } from '../../src/train/index.js';
import { GLUE, tmpDir, VOCAB } from '../helpers/paths.js';
import { fakeRun, writeBase } from '../export/helpers.js';

let dir: string;
let base: string;

beforeAll(() => {
  dir = tmpDir('modtune-loadchecks-');
  base = writeBase(dir); // max_position_embeddings 64
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function variant(name: string, edit: (m: ReturnType<typeof loadModel>) => void): string {
  const m = loadModel(base);
  edit(m);
  const out = path.join(dir, name);
  saveModel(m, out);
  return out;
}

describe('maximum length against max_position_embeddings', () => {
  it('artifacts refuse a --max-length past the position table, and record the table\'s length', () => {
    expect(() => generateArtifacts({ model: base, train: 'layernorm', task: 'sst2', out: path.join(dir, 'art-long'), maxLength: 65, tokenizer: VOCAB }))
      .toThrow(/--max-length 65 is longer than .*base\.onnx can take: its position embeddings cover 64 tokens \(max_position_embeddings\); use at most 64/);
    expect(fs.existsSync(path.join(dir, 'art-long'))).toBe(false);
    const ok = generateArtifacts({ model: base, train: 'layernorm', task: 'sst2', out: path.join(dir, 'art'), maxLength: 64, tokenizer: VOCAB });
    expect(ok.manifest.base.maxPositions).toBe(64);
  });

  it('train refuses it before loading any data', async () => {
    await expect(train({ artifacts: path.join(dir, 'art'), task: 'sst2', data: GLUE, maxLength: 100, out: path.join(dir, 'run-long') }))
      .rejects.toThrow(/--max-length 100 is longer than the model of .*art can take: its position embeddings cover 64 tokens/);
  });

  it('merge and predict refuse a delta or merged model whose maximum length the base cannot take', async () => {
    const run = fakeRun({ base, dir: path.join(dir, 'run'), train: 'layernorm', task: 'sst2' });
    const delta = exportDelta({ run: run.dir, out: path.join(dir, 'delta') }).dir;
    const merged = path.join(dir, 'tuned.onnx');
    mergeFiles({ base, delta, out: merged });
    const json = path.join(delta, 'delta.json');
    const d = JSON.parse(fs.readFileSync(json, 'utf8'));
    fs.writeFileSync(json, JSON.stringify({ ...d, tokenizer: { ...d.tokenizer, maxLength: 512 } }));
    expect(() => mergeFiles({ base, delta, out: path.join(dir, 'm2.onnx') })).toThrow(/delta\.json: field 'tokenizer\.maxLength' 512 is longer than .*base\.onnx can take/);
    await expect(Predictor.load({ base, deltas: [delta] })).rejects.toThrow(/field 'tokenizer\.maxLength' 512 is longer than/);
    const m = loadModel(merged);
    m.metadata[META_TOKENIZER] = JSON.stringify({ ...JSON.parse(m.metadata[META_TOKENIZER]!), maxLength: 300 });
    saveModel(m, path.join(dir, 'long.onnx'));
    fs.copyFileSync(path.join(dir, 'tuned.vocab.txt'), path.join(dir, 'long.vocab.txt'));
    await expect(Predictor.load({ base: path.join(dir, 'long.onnx') })).rejects.toThrow(/metadata 'modtune\.tokenizer' field 'maxLength' 300 is longer than .*long\.onnx can take: its position embeddings cover 64 tokens/);
  });
});

describe('graph checks at load', () => {
  it('a dangling input is named', () => {
    const dangling = variant('dangling.onnx', (m) => {
      const name = 'bert.encoder.layer.0.attention.self.query.bias';
      expect(m.graph.initializers.delete(name)).toBe(true);
    });
    expect(() => generateArtifacts({ model: dangling, train: 'layernorm', task: 'sst2', out: path.join(dir, 'art-dangling') }))
      .toThrow(/dangling\.onnx: node '.*' \(\w+\) reads 'bert\.encoder\.layer\.0\.attention\.self\.query\.bias', which is neither a graph input, an initializer nor any node's output/);
  });

  it('an opset newer than the runtimes run is refused at artifacts time', () => {
    const newer = variant('opset26.onnx', (m) => {
      m.opsetImports = m.opsetImports.map((o) => (o.domain === '' ? { ...o, version: 26 } : o));
    });
    expect(() => generateArtifacts({ model: newer, train: 'layernorm', task: 'sst2', out: path.join(dir, 'art-26') }))
      .toThrow(/opset26\.onnx: opset 26 of the standard ONNX domain is not supported \(1 to 21/);
    expect(readManifest(path.join(dir, 'art')).format).toBe('modtune-artifacts');
  });
});
