import { describe, expect, it } from 'vitest';
import * as path from 'node:path';
import { buildBert } from '../../src/bert/build.js';
import { presetConfig } from '../../src/bert/presets.js';
import { discoverParameters } from '../../src/modules/discover.js';
import type { ModelStructure, ParameterInfo } from '../../src/modules/types.js';
import { DataType } from '../../src/onnx/dtype.js';
import { Graph, type Model } from '../../src/onnx/graph.js';
import { loadModel, newModel } from '../../src/onnx/io.js';
import { makeTensor, numel } from '../../src/onnx/tensor.js';
import { FIXTURES, TORCH113 } from '../helpers/paths.js';
import { bertHfNames, hfLayout } from './helpers.js';

const load = (file: string) => loadModel(file);
const EVAL = path.join(TORCH113, 'tiny_bert_torch113.onnx');
const TRAINING = path.join(TORCH113, 'tiny_bert_torch113_training.onnx');
const DEDUP = path.join(TORCH113, 'tiny_bert_torch113_dedup.onnx');
const TOY = path.join(FIXTURES, 'ort_bert_toy_optimized.onnx');
const DISTIL = path.join(FIXTURES, 'optimum_tiny-distilbert-sst2.onnx');
const KERAS = path.join(FIXTURES, 'ort_TFBertForQuestionAnswering_keras2onnx.onnx');

const byHf = (s: ModelStructure, hf: string): ParameterInfo => {
  const p = s.parameters.find((q) => q.hfName === hf);
  if (!p) throw new Error(`no parameter ${hf}`);
  return p;
};

/**
 * Every float tensor of rank >= 1 that some node reads (once per Identity alias), minus the
 * scalars-in-a-vector constants: all must be placed or reported, none dropped.
 */
function learnableLooking(model: Model): Set<string> {
  const g = model.graph;
  const out = new Set<string>();
  const floats = new Set([DataType.FLOAT, DataType.FLOAT16, DataType.DOUBLE, DataType.BFLOAT16]);
  const readers = (v: string) => g.nodes.filter((n) => n.inputs.includes(v));
  const visit = (v: string) => {
    const rs = readers(v);
    if (rs.some((n) => n.opType !== 'Identity')) out.add(v);
    for (const n of rs) if (n.opType === 'Identity') visit(n.outputs[0]!);
  };
  for (const [name, t] of g.initializers) if (floats.has(t.dataType) && t.dims.length >= 1 && numel(t.dims) >= 2) visit(name);
  return out;
}

function expectFullCoverage(model: Model, s: ModelStructure): void {
  const accounted = [...s.parameters.map((p) => p.name), ...s.unplaced.map((u) => u.name)];
  expect(new Set(accounted).size).toBe(accounted.length);
  expect(new Set(accounted)).toEqual(learnableLooking(model));
  expect(s.totalCount).toBe(s.parameters.reduce((a, p) => a + p.size, 0) + s.unplaced.reduce((a, u) => a + u.size, 0));
  for (const p of s.parameters) {
    expect(p.size).toBe(numel(p.shape));
    expect(p.hfShape).toEqual(p.transposed ? [...p.shape].reverse() : p.shape);
  }
}

describe('discoverParameters: torch 1.13 exports', () => {
  const evalModel = load(EVAL);
  const evalS = discoverParameters(evalModel);

  it('maps the eval export (anonymous pre-transposed MatMul weights) to every HF name', () => {
    expect(evalS.family).toBe('bert');
    expect([evalS.numLayers, evalS.hiddenSize, evalS.numHeads, evalS.vocabSize, evalS.intermediateSize]).toEqual([2, 32, 2, 1000, 64]);
    expect(evalS.parameters.map((p) => p.hfName).sort()).toEqual(bertHfNames({ layers: 2, pooler: true, classifier: true }).sort());
    expect(evalS.unplaced).toEqual([]);
    expectFullCoverage(evalModel, evalS);

    const q0 = byHf(evalS, 'bert.encoder.layer.0.attention.self.query.weight');
    expect(q0).toMatchObject({ name: 'onnx::MatMul_336', module: 'query', layer: 0, role: 'weight', transposed: true, shape: [32, 32], hfShape: [32, 32] });
    expect(byHf(evalS, 'bert.encoder.layer.0.intermediate.dense.weight')).toMatchObject({ name: 'onnx::MatMul_347', module: 'intermediate', layer: 0, shape: [32, 64], hfShape: [64, 32], transposed: true });
    expect(byHf(evalS, 'bert.encoder.layer.1.output.dense.weight')).toMatchObject({ name: 'onnx::MatMul_361', module: 'output', layer: 1, shape: [64, 32], hfShape: [32, 64] });
    expect(byHf(evalS, 'bert.encoder.layer.1.attention.output.dense.weight')).toMatchObject({ name: 'onnx::MatMul_359', module: 'attention-output', layer: 1 });
    expect(byHf(evalS, 'bert.encoder.layer.1.attention.output.LayerNorm.bias')).toMatchObject({ module: 'attention-layernorm', layer: 1, role: 'bias', transposed: false });
    expect(byHf(evalS, 'bert.embeddings.LayerNorm.weight')).toMatchObject({ module: 'embeddings-layernorm', layer: null, role: 'weight' });
    expect(byHf(evalS, 'bert.embeddings.token_type_embeddings.weight')).toMatchObject({ module: 'embeddings', layer: null, shape: [2, 32] });
    expect(byHf(evalS, 'bert.pooler.dense.weight')).toMatchObject({ module: 'pooler', layer: null, transposed: false });
    expect(byHf(evalS, 'classifier.bias')).toMatchObject({ module: 'classifier', layer: null, role: 'bias', shape: [2] });
    // position_ids is an int64 buffer, not a parameter.
    expect(evalS.parameters.some((p) => p.name.includes('position_ids'))).toBe(false);
  });

  it('the training export (named weights behind Transpose) gives the same values per HF name, in HF layout', () => {
    const trainModel = load(TRAINING);
    const trainS = discoverParameters(trainModel);
    expectFullCoverage(trainModel, trainS);
    expect(trainS.parameters.map((p) => p.hfName)).toEqual(evalS.parameters.map((p) => p.hfName));
    const q0 = byHf(trainS, 'bert.encoder.layer.0.attention.self.query.weight');
    expect(q0).toMatchObject({ name: 'bert.encoder.layer.0.attention.self.query.weight', transposed: false });
    // Same torch model exported twice: the layouts differ, the HF-layout values must not.
    for (const p of evalS.parameters) {
      const t = byHf(trainS, p.hfName);
      expect(t.hfShape, p.hfName).toEqual(p.hfShape);
      expect(Array.from(hfLayout(t, trainS.values!(t))), p.hfName).toEqual(Array.from(hfLayout(p, evalS.values!(p))));
    }
  });

  it('the dedup export gives each HF parameter its own entry, marked shared', () => {
    const model = load(DEDUP);
    const s = discoverParameters(model);
    expectFullCoverage(model, s);
    expect(s.parameters.map((p) => p.hfName).sort()).toEqual(bertHfNames({ layers: 2, pooler: true, classifier: true }).sort());
    const ln = s.parameters.filter((p) => p.module.endsWith('layernorm'));
    expect(ln).toHaveLength(10);
    const w = byHf(s, 'bert.encoder.layer.1.output.LayerNorm.weight');
    expect(w).toMatchObject({ name: 'bert.encoder.layer.1.output.LayerNorm.weight', module: 'output-layernorm', layer: 1, role: 'weight' });
    expect(model.graph.initializers.has(w.name)).toBe(false); // an Identity output until unshared
    expect(new Set(w.sharedBy)).toEqual(new Set(['bert.embeddings.LayerNorm.weight', 'bert.encoder.layer.0.attention.output.LayerNorm.weight',
      'bert.encoder.layer.0.output.LayerNorm.weight', 'bert.encoder.layer.1.attention.output.LayerNorm.weight']));
    expect(byHf(s, 'bert.embeddings.LayerNorm.bias').sharedBy).toHaveLength(4);
    expect(s.parameters.filter((p) => !p.module.endsWith('layernorm')).every((p) => p.sharedBy === undefined)).toBe(true);
    expect(Array.from(s.values!(w))).toEqual(new Array(32).fill(1));
    // Shared tensors count once per parameter, as in the Hugging Face model.
    expect(s.totalCount).toBe(evalS.totalCount);
  });
});

describe('discoverParameters: other exporters', () => {
  it('PyTorch 1.1 export: *.weight_transposed, MLM + NSP heads reported as not selectable', () => {
    const model = load(TOY);
    const s = discoverParameters(model);
    expectFullCoverage(model, s);
    expect([s.family, s.numLayers, s.hiddenSize, s.numHeads, s.vocabSize, s.intermediateSize]).toEqual(['bert', 5, 32, 4, 99, 37]);
    expect(s.parameters.map((p) => p.hfName).sort()).toEqual(bertHfNames({ layers: 5, pooler: true }).sort());
    expect(byHf(s, 'bert.encoder.layer.3.intermediate.dense.weight')).toMatchObject({
      name: 'bert.encoder.layer.3.intermediate.dense.weight_transposed', module: 'intermediate', layer: 3, transposed: true, shape: [32, 37], hfShape: [37, 32],
    });
    expect(byHf(s, 'bert.encoder.layer.4.attention.self.value.bias')).toMatchObject({ module: 'value', layer: 4, role: 'bias' });
    expect(s.unplaced.map((u) => u.hfName).sort()).toEqual([
      'cls.predictions.bias', 'cls.predictions.transform.LayerNorm.bias', 'cls.predictions.transform.LayerNorm.weight',
      'cls.predictions.transform.dense.bias', 'cls.predictions.transform.dense.weight', 'cls.seq_relationship.bias', 'cls.seq_relationship.weight',
    ]);
    for (const u of s.unplaced) expect(u.reason).toMatch(/task head 'cls\.(predictions|seq_relationship)/);
  });

  it('optimum DistilBERT: numeric MatMul weights placed through their named biases', () => {
    const model = load(DISTIL);
    const s = discoverParameters(model);
    expectFullCoverage(model, s);
    expect([s.family, s.numLayers, s.hiddenSize, s.numHeads, s.vocabSize]).toEqual(['distilbert', 2, 2, 2, 30522]);
    const expected = ['distilbert.embeddings.word_embeddings.weight', 'distilbert.embeddings.position_embeddings.weight',
      'distilbert.embeddings.LayerNorm.weight', 'distilbert.embeddings.LayerNorm.bias'];
    for (let l = 0; l < 2; l++) {
      for (const m of ['attention.q_lin', 'attention.k_lin', 'attention.v_lin', 'attention.out_lin', 'sa_layer_norm', 'ffn.lin1', 'ffn.lin2', 'output_layer_norm']) {
        expected.push(`distilbert.transformer.layer.${l}.${m}.weight`, `distilbert.transformer.layer.${l}.${m}.bias`);
      }
    }
    expected.push('pre_classifier.weight', 'pre_classifier.bias', 'classifier.weight', 'classifier.bias');
    expect(s.parameters.map((p) => p.hfName).sort()).toEqual(expected.sort());
    expect(byHf(s, 'distilbert.transformer.layer.0.attention.q_lin.weight')).toMatchObject({ name: '302', module: 'query', layer: 0, transposed: true });
    expect(byHf(s, 'distilbert.transformer.layer.1.ffn.lin2.weight')).toMatchObject({ name: '339', module: 'output', layer: 1 });
    expect(byHf(s, 'distilbert.transformer.layer.1.attention.out_lin.weight')).toMatchObject({ name: '337', module: 'attention-output' });
    expect(byHf(s, 'distilbert.transformer.layer.0.sa_layer_norm.weight')).toMatchObject({ module: 'attention-layernorm', layer: 0 });
    expect(byHf(s, 'distilbert.transformer.layer.1.output_layer_norm.bias')).toMatchObject({ module: 'output-layernorm', layer: 1, role: 'bias' });
    expect(byHf(s, 'distilbert.transformer.layer.1.ffn.lin1.bias')).toMatchObject({ module: 'intermediate', layer: 1 });
    expect(byHf(s, 'pre_classifier.weight')).toMatchObject({ module: 'pooler', layer: null, transposed: false });
    expect(byHf(s, 'classifier.weight')).toMatchObject({ module: 'classifier' });
  });

  it('keras2onnx TF export: TF variable paths → HF PyTorch names, qa_outputs reported', () => {
    const model = load(KERAS);
    const s = discoverParameters(model);
    expectFullCoverage(model, s);
    expect([s.family, s.numLayers, s.hiddenSize, s.numHeads, s.vocabSize, s.intermediateSize]).toEqual(['bert', 24, 8, 2, 20, 32]);
    expect(s.parameters.map((p) => p.hfName).sort()).toEqual(bertHfNames({ layers: 24 }).sort());
    const tf = 'tf_bert_for_question_answering/bert';
    expect(byHf(s, 'bert.encoder.layer.5.attention.output.LayerNorm.weight').name).toBe(`${tf}/encoder/layer_._5/attention/output/LayerNorm/batchnorm/mul/ReadVariableOp/resource:0_resize`);
    expect(byHf(s, 'bert.encoder.layer.5.attention.output.LayerNorm.bias').name).toBe(`${tf}/encoder/layer_._5/attention/output/LayerNorm/batchnorm/ReadVariableOp/resource:0_resize`);
    expect(byHf(s, 'bert.encoder.layer.23.output.dense.weight')).toMatchObject({
      name: `${tf}/encoder/layer_._23/output/dense/Tensordot/Reshape_1:0_resize`, module: 'output', layer: 23, transposed: true, shape: [32, 8], hfShape: [8, 32],
    });
    expect(byHf(s, 'bert.encoder.layer.0.attention.self.key.bias').name).toBe(`${tf}/encoder/layer_._0/attention/self/key/BiasAdd/ReadVariableOp/resource:0_resize`);
    expect(byHf(s, 'bert.embeddings.word_embeddings.weight')).toMatchObject({ name: `${tf}/embeddings/Gather/resource:0_resize`, shape: [20, 8] });
    expect(byHf(s, 'bert.embeddings.position_embeddings.weight').shape).toEqual([10, 8]);
    expect(s.unplaced.map((u) => [u.hfName, u.shape])).toEqual(expect.arrayContaining([['qa_outputs.bias', [2]], ['qa_outputs.weight', [8, 2]]]));
    expect(s.unplaced).toHaveLength(2);
  });

  it('builder models: HF names through Transpose, LayerNormalization nodes, all families', () => {
    const bert = buildBert({ config: presetConfig('bert-tiny'), numLabels: 3, init: 'zeros' });
    const s = discoverParameters(bert);
    expectFullCoverage(bert, s);
    expect([s.family, s.numLayers, s.hiddenSize, s.numHeads]).toEqual(['bert', 2, 128, 2]);
    expect(s.parameters.map((p) => p.hfName)).toEqual(bertHfNames({ layers: 2, pooler: true, classifier: true }));
    for (const p of s.parameters) {
      expect(p.name).toBe(p.hfName);
      expect(p.transposed).toBe(false);
    }
    expect(bert.graph.nodes.some((n) => n.opType === 'LayerNormalization')).toBe(true);
    for (const type of ['roberta', 'electra'] as const) {
      const m = buildBert({ config: { ...presetConfig('bert-tiny'), modelType: type }, numLabels: 2, init: 'zeros' });
      const rs = discoverParameters(m);
      expect(rs.family).toBe(type);
      expect(rs.parameters.filter((p) => p.module === 'classifier').map((p) => p.hfName))
        .toEqual(['classifier.dense.weight', 'classifier.dense.bias', 'classifier.out_proj.weight', 'classifier.out_proj.bias']);
      expect(byHf(rs, `${type}.encoder.layer.1.output.LayerNorm.bias`)).toMatchObject({ module: 'output-layernorm', layer: 1 });
    }
  });
});

describe('discoverParameters: what it cannot place', () => {
  it('reports an anonymous learnable-looking tensor instead of dropping it', () => {
    const model = load(EVAL);
    const g = model.graph;
    const add = g.nodes.find((n) => n.name === '/bert/encoder/layer.0/attention/self/query/Add')!;
    const name = g.addInitializer(makeTensor('mystery_offset', DataType.FLOAT, [32], new Float32Array(32)));
    const node = g.addNode({ opType: 'Add', inputs: [add.outputs[0]!, name], name: 'unscoped_add' });
    g.replaceUses(add.outputs[0]!, node.outputs[0]!);
    node.inputs[0] = add.outputs[0]!;
    const s = discoverParameters(model);
    expect(s.unplaced).toEqual([{ name: 'mystery_offset', shape: [32], size: 32, reason: expect.stringContaining("Add 'unscoped_add'") }]);
    expect(s.totalCount).toBe(discoverParameters(load(EVAL)).totalCount + 32);
  });

  it('a graph without BERT structure is a one-line error saying what was looked for', () => {
    const g = new Graph();
    g.inputs.push({ name: 'x', elemType: DataType.FLOAT, shape: [1, 4] });
    g.addInitializer(makeTensor('w', DataType.FLOAT, [4, 4], new Float32Array(16)));
    g.addNode({ opType: 'MatMul', inputs: ['x', 'w'], outputs: ['y'] });
    g.outputs.push({ name: 'y', elemType: DataType.FLOAT, shape: [1, 4] });
    expect(() => discoverParameters(newModel(g), { label: 'plain.onnx' })).toThrow(
      /^plain\.onnx: no BERT structure found: looked for LayerNorms .* and attention Softmax nodes, found neither$/);
  });

  it('an attention block with anonymous weights: LayerNorm and Softmax found, nothing placeable', () => {
    const file = path.join(FIXTURES, 'ort_attention_distilbert.onnx');
    expect(() => discoverParameters(load(file), { label: file })).toThrow(/no BERT encoder parameters found: the graph has 1 LayerNorm\(s\) and 1 attention Softmax/);
  });
});
