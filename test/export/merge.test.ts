import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readSafetensors } from '../../src/bert/safetensors.js';
import { exportDelta } from '../../src/export/export.js';
import { mergeFiles } from '../../src/export/merge.js';
import { META_BASE_SHA, META_DELTA_SHA, META_TASK, META_TOKENIZER } from '../../src/export/metadata.js';
import { DataType } from '../../src/onnx/dtype.js';
import { modelSha256, sha256File } from '../../src/onnx/hash.js';
import { loadModel } from '../../src/onnx/io.js';
import { tmpDir, TORCH113, VOCAB } from '../helpers/paths.js';
import { Batch, evalLogits, fakeRun, maxAbsDiff, modelLogits, SAMPLE, writeBase } from './helpers.js';

let dir: string;
let base: string;

beforeAll(() => {
  dir = tmpDir('modtune-merge-');
  base = writeBase(dir);
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** The torch fixtures' own inputs (their vocabulary is small). */
const TORCH_BATCH: Batch = {
  inputIds: [[101, 7, 8, 9, 102, 0], [101, 15, 16, 102, 0, 0]],
  attentionMask: [[1, 1, 1, 1, 1, 0], [1, 1, 1, 1, 0, 0]],
};

describe('mergeFiles', () => {
  for (const spec of ['layernorm', 'attention@1', 'bias:top=20%']) {
    it(`bakes a '${spec}' delta into the base: logits equal the artifacts' eval model fed the checkpoint`, async () => {
      const run = fakeRun({ base, dir: path.join(dir, `run-${spec.replace(/\W/g, '_')}`), train: spec, task: 'sst2' });
      const delta = exportDelta({ run: run.dir, out: path.join(run.dir, 'delta') });
      const out = path.join(run.dir, 'out', 'tuned.onnx');
      const r = mergeFiles({ base, delta: delta.dir, out });
      const expected = await evalLogits(run, run.best, SAMPLE);
      expect(maxAbsDiff(await modelLogits(out, SAMPLE), expected)).toBeLessThanOrEqual(1e-5);
      // With the initial values the logits differ: the delta did something.
      const initial = readSafetensors(path.join(run.artifacts, 'params.safetensors')).tensors;
      expect(maxAbsDiff(await evalLogits(run, initial, SAMPLE), expected)).toBeGreaterThan(1e-4);
      // A difference delta gives the same model (up to float32 rounding of base + diff).
      const diff = exportDelta({ run: run.dir, out: path.join(run.dir, 'delta-diff'), diff: true });
      const outDiff = path.join(run.dir, 'out', 'tuned-diff.onnx');
      mergeFiles({ base, delta: diff.dir, out: outDiff });
      expect(maxAbsDiff(await modelLogits(outDiff, SAMPLE), expected)).toBeLessThanOrEqual(1e-5);
      // Inference model: the three input tensors in, logits out.
      const model = loadModel(out);
      expect(model.graph.inputs.map((i) => i.name).sort()).toEqual(['attention_mask', 'input_ids', 'token_type_ids']);
      expect(model.graph.outputs.map((o) => o.name)).toEqual(['logits']);
      expect(r.files).toEqual([out, path.join(run.dir, 'out', 'tuned.vocab.txt')]);
    });
  }

  it('records task, labels, tokenizer, delta and base identity in the metadata and copies the tokenizer', () => {
    const run = fakeRun({ base, dir: path.join(dir, 'run-meta'), train: 'layernorm@1', task: 'mnli' });
    const delta = exportDelta({ run: run.dir, out: path.join(run.dir, 'delta') });
    const out = path.join(run.dir, 'merged.onnx');
    mergeFiles({ base, delta: delta.dir, out });
    const meta = loadModel(out).metadata;
    expect(JSON.parse(meta[META_TASK]!)).toEqual({ name: 'MNLI', kind: 'pair', labels: ['entailment', 'neutral', 'contradiction'], head: { kind: 'classification', numLabels: 3 } });
    expect(JSON.parse(meta[META_TOKENIZER]!)).toEqual({ file: 'merged.vocab.txt', sha256: sha256File(VOCAB), lowercase: true, maxLength: 64 });
    expect(meta[META_DELTA_SHA]).toBe(sha256File(path.join(delta.dir, 'delta.safetensors')));
    expect(meta[META_BASE_SHA]).toBe(modelSha256(base));
    expect(sha256File(path.join(run.dir, 'merged.vocab.txt'))).toBe(sha256File(VOCAB));
  });

  it('handles exporter models: pre-transposed anonymous weights and tensors shared by dedup', async () => {
    for (const fixture of ['tiny_bert_torch113.onnx', 'tiny_bert_torch113_dedup.onnx']) {
      const file = path.join(TORCH113, fixture);
      const run = fakeRun({ base: file, dir: path.join(dir, `run-${fixture}`), train: 'layernorm,attention@0', task: 'mrpc', tokenizer: null });
      expect(run.manifest.parameters.some((p) => p.baseTransposed)).toBe(true);
      const delta = exportDelta({ run: run.dir, out: path.join(run.dir, 'delta') });
      expect(delta.manifest.task.newHead).toBe(false);
      const out = path.join(run.dir, 'tuned.onnx');
      mergeFiles({ base: file, delta: delta.dir, out });
      const expected = await evalLogits(run, run.best, TORCH_BATCH);
      expect(maxAbsDiff(await modelLogits(out, TORCH_BATCH), expected), fixture).toBeLessThanOrEqual(1e-5);
      const model = loadModel(out);
      // Dedup: every LayerNorm was tuned, so each got its own initializer and no Identity is left.
      if (fixture.includes('dedup')) expect(model.graph.nodes.some((n) => n.opType === 'Identity')).toBe(false);
    }
  });

  it('--fp16 stores big weights as float16 behind Casts: half the bytes, logits close to float32', async () => {
    const run = fakeRun({ base, dir: path.join(dir, 'run-fp16'), train: 'layernorm', task: 'sst2' });
    const delta = exportDelta({ run: run.dir, out: path.join(run.dir, 'delta') });
    const out32 = path.join(run.dir, 'tuned32.onnx');
    const out16 = path.join(run.dir, 'tuned16.onnx');
    mergeFiles({ base, delta: delta.dir, out: out32 });
    const r = mergeFiles({ base, delta: delta.dir, out: out16, fp16: true });
    expect(r.fp16!.tensors).toBeGreaterThan(0);
    expect(r.fp16!.bytesAfter * 2).toBe(r.fp16!.bytesBefore);
    expect(fs.statSync(out16).size).toBeLessThan(0.6 * fs.statSync(out32).size);
    const model = loadModel(out16);
    const halves = [...model.graph.initializers.values()].filter((t) => t.dataType === DataType.FLOAT16);
    expect(halves.length).toBe(r.fp16!.tensors);
    for (const h of halves) expect(model.graph.consumers(h.name).map((n) => n.opType)).toEqual(['Cast']);
    const a = await modelLogits(out32, SAMPLE);
    const b = await modelLogits(out16, SAMPLE);
    const diff = maxAbsDiff(a, b);
    expect(diff).toBeGreaterThan(0);
    expect(diff).toBeLessThan(1e-3);
  });

  it('refuses a delta for another base, naming the difference; --force only overrides the sha', async () => {
    const run = fakeRun({ base, dir: path.join(dir, 'run-other'), train: 'layernorm', task: 'sst2' });
    const delta = exportDelta({ run: run.dir, out: path.join(run.dir, 'delta') });
    const sameShape = writeBase(path.join(dir, 'other-seed'), { seed: 9 });
    const out = path.join(dir, 'other.onnx');
    expect(() => mergeFiles({ base: sameShape, delta: delta.dir, out })).toThrow(
      new RegExp(`made for base sha256 ${modelSha256(base).slice(0, 12)}…, but .* has ${modelSha256(sameShape).slice(0, 12)}…; pass --force`),
    );
    mergeFiles({ base: sameShape, delta: delta.dir, out, force: true });
    expect(fs.existsSync(out)).toBe(true);
    const deeper = writeBase(path.join(dir, 'deeper'), { config: { num_hidden_layers: 3 } });
    const err = /made for another base shape than .* \(delta vs base: 2 vs 3 layers\)/;
    const deeperOut = path.join(dir, 'other-deeper.onnx');
    expect(() => mergeFiles({ base: deeper, delta: delta.dir, out: deeperOut })).toThrow(err);
    expect(() => mergeFiles({ base: deeper, delta: delta.dir, out: deeperOut, force: true })).toThrow(err);
    const smallerVocab = writeBase(path.join(dir, 'vocab'), { config: { vocab_size: 1000 } });
    expect(() => mergeFiles({ base: smallerVocab, delta: delta.dir, out, force: true })).toThrow(/made for a base with \d+ parameters \(with the head\), .* has \d+/);
    expect(() => mergeFiles({ base, delta: delta.dir, out: base })).toThrow(`--out ${base} is the base model, an input of this command; choose another --out`);
  });
});
