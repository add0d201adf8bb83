/**
 * The native gradient.onnx of whole models against PyTorch autograd (float64), for the three ways a
 * BERT reaches us: torch's eval export (anonymous pre-transposed weights, decomposed LayerNorm),
 * torch's training-mode export (Dropout nodes, made identity by `dropout: 0`) and the builder's
 * graph, plus the builder's regression head (MSE loss).
 *
 * With zero accumulators, `P.grad_accumulator.updated` is this batch's gradient. The criterion is
 * the fixtures' own (their `compare` key, written by scripts/torch_reference_grads.py): per tensor,
 * max_i |got_i − ref_i| ≤ 1e-4 · max_i |ref_i| + 1e-7, against the float64 reference. The floor
 * covers the attention key biases, whose true gradient is 0 (softmax ignores a shift shared by all
 * keys) and whose computed values are rounding noise (~1e-10).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { generateArtifacts } from '../../../src/artifacts/generate.js';
import type { Manifest } from '../../../src/artifacts/manifest.js';
import { readSafetensors } from '../../../src/bert/safetensors.js';
import { loadModel } from '../../../src/onnx/io.js';
import { tensorFloat32 } from '../../../src/onnx/tensor.js';
import { SHARED, TORCH113, tmpDir } from '../../helpers/paths.js';
import { batchFromJson, compareTensor, initialValues, nativeGradients, TORCH_FIXTURES, writeBuilderTiny } from './drive.js';

interface Reference {
  source: { kind: 'onnx'; file: string } | { kind: 'builder' };
  task: 'classification' | 'regression';
  config: { numLabels: number };
  compare: { dtype: string; relTolerance: number; absFloor: number };
  inputs: { input_ids: number[][]; attention_mask: number[][]; token_type_ids: number[][]; labels: number[] };
  allGradients: string;
  float64: { loss: number; logits: number[][]; gradients: Record<string, { shape: number[]; values: number[]; rows?: number[] }> };
}

const WORD_EMBEDDINGS = 'bert.embeddings.word_embeddings.weight';
const readReference = (file: string): Reference => JSON.parse(fs.readFileSync(path.join(TORCH_FIXTURES, file), 'utf8'));

const CASES = [
  { name: 'torch eval export', reference: 'grads-torch113-eval.json', selections: ['full', 'layernorm'] },
  { name: 'torch training-mode export', reference: 'grads-torch113-training.json', selections: ['full'] },
  { name: 'builder model', reference: 'grads-builder-tiny.json', selections: ['full', 'layernorm'] },
  { name: 'builder model, regression head', reference: 'grads-builder-tiny-regression.json', selections: ['full'] },
] as const;

let work: string;
beforeAll(() => {
  work = tmpDir('modtune-proof-torch-');
});
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

function modelFile(ref: Reference, fixture: string): string {
  if (ref.source.kind === 'onnx') return path.join(SHARED, ref.source.file);
  return writeBuilderTiny(work, fixture.includes('regression') ? 'builder-tiny-regression' : 'builder-tiny');
}

for (const c of CASES) {
  describe(`${c.name} vs PyTorch (${c.reference})`, () => {
    const ref = readReference(c.reference);
    const regression = ref.task === 'regression';
    const batch = batchFromJson(ref.inputs, regression);
    const head = regression ? { regression: true } : { numLabels: ref.config.numLabels };
    const all = () => readSafetensors(path.join(TORCH_FIXTURES, ref.allGradients)).tensors;

    it('the fixture asks for the float64 comparison at 1e-4 relative', () => {
      expect(ref.compare).toMatchObject({ dtype: 'float64', relTolerance: 1e-4, absFloor: 1e-7 });
    });

    for (const train of c.selections) {
      describe(`--train ${train}`, () => {
        let dir: string;
        let m: Manifest;
        let result: Awaited<ReturnType<typeof nativeGradients>>;
        beforeAll(async () => {
          dir = path.join(work, `${path.basename(c.reference, '.json')}-${train}`);
          m = generateArtifacts({ model: modelFile(ref, c.reference), train, out: dir, ...head, dropout: 0, format: 'native' }).manifest;
          result = await nativeGradients(dir, m, batch);
        });

        it('reuses the model\'s head and reproduces the reference loss and logits', () => {
          expect(m.task.headReused).toBe(true);
          expect(Math.abs(result.loss - ref.float64.loss)).toBeLessThanOrEqual(1e-5 * Math.abs(ref.float64.loss));
          const { maxDiff } = compareTensor(result.logits, ref.float64.logits.flat());
          expect(maxDiff).toBeLessThanOrEqual(1e-5);
        });

        it('gives every trainable parameter PyTorch\'s gradient (HF names, HF layout)', () => {
          const { relTolerance, absFloor } = ref.compare;
          const allGrads = all();
          // `full`: every parameter the reference has (all but the word embedding) plus the word
          // embedding; `layernorm`: the 10 LayerNorm tensors and the (trained) classifier.
          const expectedNames = train === 'full' ? [...allGrads.keys(), WORD_EMBEDDINGS] : m.parameters.map((p) => p.name);
          expect([...result.gradients.keys()].sort()).toEqual([...expectedNames].sort());
          if (train === 'layernorm') expect(result.gradients.size).toBe(12);
          for (const [name, got] of result.gradients) {
            const p = m.parameters.find((q) => q.name === name)!;
            const json = ref.float64.gradients[name];
            if (name === WORD_EMBEDDINGS) {
              // Only the rows of the batch's ids are stored; every other row's gradient is exactly 0.
              const { rows, values } = json!;
              const width = p.shape[1]!;
              const touched = rows!.flatMap((r) => Array.from(got.subarray(r * width, (r + 1) * width)));
              const cmp = compareTensor(touched, values);
              expect(cmp.maxDiff, `${name} (touched rows)`).toBeLessThanOrEqual(relTolerance * cmp.maxRef + absFloor);
              const rowSet = new Set(rows);
              for (let r = 0; r < p.shape[0]!; r++) {
                if (!rowSet.has(r)) expect(got.subarray(r * width, (r + 1) * width).every((v) => v === 0), `${name} row ${r}`).toBe(true);
              }
              continue;
            }
            // float64 values from the JSON where it has them (LayerNorms, biases, pooler, classifier,
            // token types), else the float64 values rounded to F32 from the safetensors companion.
            const refValues = json ? json.values : allGrads.get(name)!.data;
            expect(json ? json.shape : allGrads.get(name)!.shape, name).toEqual(p.shape);
            const cmp = compareTensor(got, refValues);
            expect(cmp.maxDiff, `${name}: max |diff| ${cmp.maxDiff} vs max |ref| ${cmp.maxRef}`).toBeLessThanOrEqual(relTolerance * cmp.maxRef + absFloor);
          }
          // Every LayerNorm and the classifier are covered in both selections, the pooler in `full`.
          const names = [...result.gradients.keys()];
          expect(names.filter((n) => n.endsWith('LayerNorm.weight') || n.endsWith('LayerNorm.bias'))).toHaveLength(10);
          expect(names).toEqual(expect.arrayContaining(['classifier.weight', 'classifier.bias']));
          if (train === 'full') expect(names).toEqual(expect.arrayContaining(['bert.pooler.dense.weight', 'bert.pooler.dense.bias', WORD_EMBEDDINGS]));
        });
      });
    }
  });
}

describe('the eval export\'s anonymous pre-transposed weights', () => {
  it('train under their HF names in HF layout, starting from the exported values', () => {
    const file = path.join(TORCH113, 'tiny_bert_torch113.onnx');
    const dir = path.join(work, 'eval-export-layout');
    const m = generateArtifacts({ model: file, train: 'attention@0', out: dir, numLabels: 2, dropout: 0, format: 'native' }).manifest;
    const base = loadModel(file).graph;
    const initial = initialValues(dir, m);
    const query = m.parameters.find((p) => p.name === 'bert.encoder.layer.0.attention.self.query.weight')!;
    expect(query.baseInitializer).toMatch(/^onnx::MatMul_\d+$/);
    expect(query.baseTransposed).toBe(true);
    const stored = base.initializers.get(query.baseInitializer)!; // [in, out]
    const [rows, cols] = stored.dims as [number, number];
    const values = tensorFloat32(stored);
    const hf = initial.get(query.name)!; // [out, in]
    expect(query.shape).toEqual([cols, rows]);
    for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) expect(hf[c * rows + r]).toBe(values[r * cols + c]);
    // No anonymous name leaks into the artifacts' interface.
    const gradientInputs = m.native!.gradient.inputs.map((i) => i.name);
    expect(gradientInputs.some((n) => n.startsWith('onnx::'))).toBe(false);
    expect(gradientInputs).toContain('bert.encoder.layer.0.attention.self.query.weight.grad_accumulator');
  });
});
