/**
 * The builder against torch: a graph built from the weights of torch's training-mode export of the
 * tiny BERT (`export_tiny_bert.py`) must give the logits torch computed.
 */
import { describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadModel } from '../../src/onnx/io.js';
import { tensorFloat32 } from '../../src/onnx/tensor.js';
import { buildBert, countParameters, parseHfConfig, weightsFromModel } from '../../src/bert/index.js';
import { TORCH113 } from '../helpers/paths.js';
import { floats, maxAbsDiff, run } from './helpers.js';

const expected = JSON.parse(fs.readFileSync(path.join(TORCH113, 'tiny_bert_torch113.expected.json'), 'utf8'));
const training = loadModel(path.join(TORCH113, 'tiny_bert_torch113_training.onnx'));
const evalExport = loadModel(path.join(TORCH113, 'tiny_bert_torch113.onnx'));

/** The architecture of export_tiny_bert.py (V, H, L, A, I, P, T = 1000, 32, 2, 2, 64, 64, 2; eps 1e-12; 2 labels). */
const config = parseHfConfig({
  model_type: 'bert', vocab_size: 1000, hidden_size: 32, num_hidden_layers: 2, num_attention_heads: 2,
  intermediate_size: 64, max_position_embeddings: 64, type_vocab_size: 2, layer_norm_eps: 1e-12, hidden_act: 'gelu',
  id2label: { 0: 'LABEL_0', 1: 'LABEL_1' },
}, 'export_tiny_bert config');

describe('builder vs the torch 1.13 fixture', () => {
  it('the training export holds the same weights as the eval export that expected.json describes', () => {
    expect(expected.model).toBe('tiny_bert_torch113.onnx');
    let named = 0;
    let transposed = 0;
    for (const [name, t] of evalExport.graph.initializers) {
      if (t.dataType !== 1) continue;
      if (!name.startsWith('onnx::')) {
        expect(Array.from(tensorFloat32(training.graph.initializers.get(name)!)), name).toEqual(Array.from(tensorFloat32(t)));
        named++;
        continue;
      }
      // Anonymous pre-transposed weight: its MatMul's scope names the Linear (…/query/MatMul → ….query.weight).
      const matmul = evalExport.graph.consumers(name)[0]!;
      const hfName = matmul.name.replace(/^\//, '').replace(/\/MatMul$/, '').replaceAll('/', '.') + '.weight';
      const w = training.graph.initializers.get(hfName)!;
      expect(w, hfName).toBeDefined();
      const [out, inp] = w.dims as [number, number];
      expect(t.dims).toEqual([inp, out]);
      const a = tensorFloat32(t);
      const b = tensorFloat32(w);
      for (let i = 0; i < inp; i++) for (let j = 0; j < out; j++) if (a[i * out + j] !== b[j * inp + i]) throw new Error(`${hfName}[${j},${i}] differs`);
      transposed++;
    }
    expect(named).toBeGreaterThan(20);
    expect(transposed).toBe(12);
  });

  it('matches torch\'s logits to 1e-5 in onnxruntime-node', async () => {
    const model = buildBert({ config, weights: weightsFromModel(training), numLabels: 2, weightsLabel: 'tiny_bert_torch113_training.onnx' });
    const out = await run(model, expected);
    const got = floats(out.logits);
    const want = (expected.expected_logits as number[][]).flat();
    expect(out.logits!.dims).toEqual([2, 2]);
    expect(maxAbsDiff(got, want)).toBeLessThan(1e-5);
    // Same parameters as torch's model: every float tensor of its export.
    expect(countParameters(model)).toBe(countParameters(training));
  });

  it('agrees with torch\'s eval export on other inputs (longer, batch 3, token types, padding)', async () => {
    const model = buildBert({ config, weights: weightsFromModel(training), numLabels: 2 });
    const feeds = {
      input_ids: [[101, 5, 900, 17, 33, 102, 44, 45, 102, 0], [101, 999, 2, 102, 0, 0, 0, 0, 0, 0], [101, 3, 4, 5, 6, 7, 8, 9, 10, 102]],
      attention_mask: [[1, 1, 1, 1, 1, 1, 1, 1, 1, 0], [1, 1, 1, 1, 0, 0, 0, 0, 0, 0], [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]],
      token_type_ids: [[0, 0, 0, 0, 0, 0, 1, 1, 1, 0], [0, 0, 0, 0, 0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 1, 1, 1, 1, 1]],
    };
    const ours = floats((await run(model, feeds)).logits);
    const torchs = floats((await run(evalExport, feeds))[evalExport.graph.outputs[0]!.name]);
    expect(maxAbsDiff(ours, torchs)).toBeLessThan(1e-5);
  });

  it('follows the graph conventions: opset 17, HF-named [out, in] weights through Transpose, fused LayerNorm, Erf GELU, no Dropout', () => {
    const model = buildBert({ config, weights: weightsFromModel(training), numLabels: 2 });
    const g = model.graph;
    expect(model.opsetImports).toEqual([{ domain: '', version: 17 }]);
    expect(g.inputs.map((i) => [i.name, i.elemType, i.shape])).toEqual([
      ['input_ids', 7, ['batch', 'sequence']], ['attention_mask', 7, ['batch', 'sequence']], ['token_type_ids', 7, ['batch', 'sequence']],
    ]);
    expect(g.outputs.map((o) => [o.name, o.shape])).toEqual([['logits', ['batch', 2]]]);
    const q = 'bert.encoder.layer.0.attention.self.query.weight';
    expect(g.initializers.get(q)!.dims).toEqual([32, 32]);
    const transpose = g.consumers(q)[0]!;
    expect(transpose.opType).toBe('Transpose');
    expect(transpose.name).toBe('/bert/encoder/layer.0/attention/self/query/Transpose');
    expect(g.consumers(transpose.outputs[0]!)[0]!.name).toBe('/bert/encoder/layer.0/attention/self/query/MatMul');
    expect(g.initializers.get('bert.encoder.layer.0.intermediate.dense.weight')!.dims).toEqual([64, 32]);
    const ln = g.consumers('bert.encoder.layer.1.output.LayerNorm.weight')[0]!;
    expect(ln.opType).toBe('LayerNormalization');
    expect(ln.inputs[2]).toBe('bert.encoder.layer.1.output.LayerNorm.bias');
    const ops = new Set(g.nodes.map((n) => n.opType));
    expect(ops.has('Erf')).toBe(true);
    expect(ops.has('Dropout')).toBe(false);
    expect(ops.has('ReduceMean')).toBe(false);
    expect(g.nodes.filter((n) => n.opType === 'LayerNormalization')).toHaveLength(1 + 2 * 2);
    // Every initializer is a parameter with its Hugging Face name.
    expect([...g.initializers.keys()].every((n) => /^(bert\.|classifier\.)/.test(n))).toBe(true);
    expect(new Set(g.nodes.map((n) => n.name)).size).toBe(g.nodes.length);
    const meta = JSON.parse(model.metadata['modtune.config']!);
    expect(meta).toMatchObject({ model_type: 'bert', hidden_size: 32, hidden_dropout_prob: 0.1, num_labels: 2, id2label: { 0: 'LABEL_0', 1: 'LABEL_1' } });
    expect(parseHfConfig(meta, 'metadata')).toEqual({ ...config, numLabels: 2 });
  });
});
