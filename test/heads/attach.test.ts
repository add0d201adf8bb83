import { describe, expect, it } from 'vitest';
import * as path from 'node:path';
import { ModtuneError } from '../../src/errors.js';
import { attachHead, HeadSpec } from '../../src/heads/index.js';
import { DataType } from '../../src/onnx/dtype.js';
import { Graph, Model, opsetVersion } from '../../src/onnx/graph.js';
import { loadModel, newModel } from '../../src/onnx/io.js';
import { scalarF32, tensorFloat32 } from '../../src/onnx/tensor.js';
import { FIXTURES, TORCH113 } from '../helpers/paths.js';
import {
  bertFeeds, classLabels, crossEntropy, dropoutNodes, floatLabels, meanSquaredError, run, session, tinyBert, tinyConfig, torchExpected,
} from './helpers.js';

const TORCH_EVAL = path.join(TORCH113, 'tiny_bert_torch113.onnx');

/** Every BERT-like fixture with a [CLS] path; `labels`: the count its own head has, or what we ask for. */
const FIXTURE_CASES: { file: string; numLabels: number; reused: boolean; vocab: number }[] = [
  { file: path.join(TORCH113, 'tiny_bert_torch113.onnx'), numLabels: 2, reused: true, vocab: 1000 },
  { file: path.join(TORCH113, 'tiny_bert_torch113_training.onnx'), numLabels: 2, reused: true, vocab: 1000 },
  { file: path.join(TORCH113, 'tiny_bert_torch113_dedup.onnx'), numLabels: 2, reused: true, vocab: 1000 },
  { file: path.join(FIXTURES, 'optimum_tiny-distilbert-sst2.onnx'), numLabels: 2, reused: true, vocab: 1000 },
  { file: path.join(FIXTURES, 'ort_bert_toy_optimized.onnx'), numLabels: 3, reused: false, vocab: 99 },
  { file: path.join(FIXTURES, 'ort_TFBertForQuestionAnswering_keras2onnx.onnx'), numLabels: 3, reused: false, vocab: 20 },
];

const LABELS = [1, 0];

/** Run eval/infer/train(dropout 0) and check the loss against one computed here from the logits. */
async function checkRuns(model: Model, spec: HeadSpec, vocab: number, what: string) {
  const feeds = bertFeeds(model, vocab);
  const n = spec.kind === 'regression' ? 1 : spec.numLabels;
  const labels = spec.kind === 'regression' ? floatLabels([0.5, -1.25]) : classLabels(LABELS);
  const plain = attachHead(model, spec, { dropout: 0, label: what });
  expect(dropoutNodes(plain.train), what).toHaveLength(0);

  const evalOut = await run(await session(plain.eval), { ...feeds, labels });
  const inferOut = await run(await session(plain.infer), feeds);
  const trainOut = await run(await session(plain.train), { ...feeds, labels });
  expect(evalOut.logitsDims, what).toEqual([2, n]);
  expect(evalOut.lossDims, what).toEqual([]);
  expect(inferOut.loss, what).toBeUndefined();
  expect(inferOut.logits, what).toEqual(evalOut.logits);
  const want = spec.kind === 'regression' ? meanSquaredError(evalOut.logits, [0.5, -1.25]) : crossEntropy(evalOut.logits, LABELS);
  expect(Math.abs(evalOut.loss! - want), `${what}: loss ${evalOut.loss} vs ${want}`).toBeLessThan(1e-5 * Math.max(1, Math.abs(want)));
  // Without dropout the train graph computes exactly what the eval graph does.
  expect(trainOut.loss, what).toBe(evalOut.loss);
  expect(trainOut.logits, what).toEqual(evalOut.logits);
  return { plain, evalOut };
}

describe('attachHead on exporter fixtures', () => {
  for (const c of FIXTURE_CASES) {
    const name = path.basename(c.file);
    it(`${name}: train/eval/infer run and the loss matches cross-entropy of the logits`, async () => {
      const model = loadModel(c.file);
      const { plain } = await checkRuns(model, { kind: 'classification', numLabels: c.numLabels }, c.vocab, name);
      expect(plain.head.reused).toBe(c.reused);
      expect(plain.train.graph.inputs.map((i) => i.name)).toEqual([...model.graph.inputs.map((i) => i.name), 'labels']);
      expect(plain.infer.graph.inputs.map((i) => i.name)).toEqual(model.graph.inputs.map((i) => i.name));
      expect(plain.train.graph.outputs.map((o) => o.name)).toEqual(['loss', 'logits']);
      expect(plain.infer.graph.outputs.map((o) => o.name)).toEqual(['logits']);
      for (const m of [plain.train, plain.eval, plain.infer]) {
        expect(JSON.parse(m.metadata['modtune.head']!)).toEqual({ kind: 'classification', numLabels: c.numLabels });
        expect(opsetVersion(m)!).toBeGreaterThanOrEqual(12);
      }
    });
  }

  it('raises opset-11 exports to 12 without touching the input model', () => {
    const model = loadModel(path.join(FIXTURES, 'optimum_tiny-distilbert-sst2.onnx'));
    const nodes = model.graph.nodes.length;
    expect(opsetVersion(model)).toBe(11);
    const h = attachHead(model, { kind: 'classification', numLabels: 2 });
    expect(opsetVersion(h.train)).toBe(12);
    expect(h.train.irVersion).toBeGreaterThanOrEqual(7);
    expect(opsetVersion(model)).toBe(11);
    expect(model.graph.nodes.length).toBe(nodes);
    expect(model.graph.outputs.map((o) => o.name)).toEqual(['logits']);
  });

  it('drops pre-training heads (MLM + NSP) and their now-dead nodes', () => {
    const model = loadModel(path.join(FIXTURES, 'ort_bert_toy_optimized.onnx'));
    const h = attachHead(model, { kind: 'classification', numLabels: 3 });
    const inits = [...h.infer.graph.initializers.keys()];
    expect(inits.some((k) => k.startsWith('cls.'))).toBe(false);
    expect(inits).toContain('bert.pooler.dense.weight');
    expect(h.infer.graph.nodes.some((n) => n.outputs.includes('prediction_scores'))).toBe(false);
    // The new head reads the pooler's tanh.
    const mm = h.infer.graph.nodes.find((n) => n.name === '/classifier/MatMul')!;
    expect(h.infer.graph.nodes.find((n) => n.outputs.includes(mm.inputs[0]!))!.opType).toBe('Tanh');
  });

  it('puts a head on the [CLS] token of a model without a pooler (keras QA export)', () => {
    const model = loadModel(path.join(FIXTURES, 'ort_TFBertForQuestionAnswering_keras2onnx.onnx'));
    const h = attachHead(model, { kind: 'classification', numLabels: 3 });
    const g = h.infer.graph;
    const mm = g.nodes.find((n) => n.name === '/classifier/MatMul')!;
    const gather = g.nodes.find((n) => n.outputs.includes(mm.inputs[0]!))!;
    expect(gather.opType).toBe('Gather');
    expect(gather.attrs.axis).toEqual({ type: 'int', value: 1 });
    expect(g.initializers.get('classifier.weight')!.dims).toEqual([3, 8]);
  });
});

describe('attachHead on builder models', () => {
  it('bert without a head: new classifier on the pooler output, runs, loss matches', async () => {
    const model = tinyBert();
    const { plain } = await checkRuns(model, { kind: 'classification', numLabels: 3 }, 100, 'builder bert');
    expect(plain.head).toEqual({ reused: false, params: ['classifier.weight', 'classifier.bias'] });
    expect(plain.infer.graph.initializers.get('classifier.weight')!.dims).toEqual([3, 16]);
  });

  it('bert with a head of the right size keeps it: infer logits equal the original model\'s', async () => {
    const model = tinyBert({ numLabels: 3 });
    const { plain, evalOut } = await checkRuns(model, { kind: 'classification', numLabels: 3 }, 100, 'builder bert head');
    expect(plain.head).toEqual({ reused: true, params: ['classifier.weight', 'classifier.bias'] });
    const original = await run(await session(model), bertFeeds(model, 100));
    expect(evalOut.logits).toEqual(original.logits);
  });

  for (const family of ['roberta', 'electra'] as const) {
    it(`${family} with its classification head (dense → act → out_proj) keeps all four tensors`, async () => {
      const model = tinyBert({ config: tinyConfig(family), numLabels: 2 });
      const { plain, evalOut } = await checkRuns(model, { kind: 'classification', numLabels: 2 }, 100, family);
      expect(plain.head).toEqual({
        reused: true,
        params: ['classifier.dense.weight', 'classifier.dense.bias', 'classifier.out_proj.weight', 'classifier.out_proj.bias'],
      });
      const original = await run(await session(model), bertFeeds(model, 100));
      expect(evalOut.logits).toEqual(original.logits);
    });
  }

  it('ELECTRA with an embeddings projection (embedding_size != hidden_size) is found', async () => {
    const model = tinyBert({ config: tinyConfig('electra', { embeddingSize: 8 }), numLabels: 2 });
    const { plain } = await checkRuns(model, { kind: 'classification', numLabels: 2 }, 100, 'electra project');
    expect(plain.head.reused).toBe(true);
  });

  it('regression: builder head reused, logits [batch, 1], loss is the MSE of the logits', async () => {
    const model = tinyBert({ regression: true });
    const { plain } = await checkRuns(model, { kind: 'regression' }, 100, 'builder regression');
    expect(plain.head.reused).toBe(true);
    const labels = plain.train.graph.inputs.find((i) => i.name === 'labels')!;
    expect(labels.elemType).toBe(DataType.FLOAT);
    expect(labels.shape).toEqual(['batch']);
    expect(plain.train.graph.outputs.find((o) => o.name === 'logits')!.shape).toEqual(['batch', 1]);
    expect(plain.train.graph.nodes.some((n) => n.opType === 'SoftmaxCrossEntropyLoss')).toBe(false);
    expect(JSON.parse(plain.train.metadata['modtune.head']!)).toEqual({ kind: 'regression', numLabels: 1 });
  });

  it('regression head on a model without one: classifier.weight [1, hidden]', async () => {
    const { plain } = await checkRuns(tinyBert(), { kind: 'regression' }, 100, 'builder new regression');
    expect(plain.head.reused).toBe(false);
    expect(plain.infer.graph.initializers.get('classifier.weight')!.dims).toEqual([1, 16]);
    expect(plain.infer.graph.initializers.get('classifier.bias')!.dims).toEqual([1]);
  });

  it('a model attachHead already produced can be headed again', async () => {
    const first = attachHead(tinyBert(), { kind: 'classification', numLabels: 2 }, { dropout: 0 });
    const again = await checkRuns(first.train, { kind: 'classification', numLabels: 2 }, 100, 'headed twice');
    expect(again.plain.head.reused).toBe(true);
    expect(again.plain.infer.graph.inputs.map((i) => i.name)).toEqual(['input_ids', 'attention_mask', 'token_type_ids']);
    const original = await run(await session(first.infer), bertFeeds(first.infer, 100));
    expect(again.evalOut.logits).toEqual(original.logits);
  });

  it('classification labels are int64 [batch]', () => {
    const h = attachHead(tinyBert(), { kind: 'classification', numLabels: 2 });
    const labels = h.eval.graph.inputs.find((i) => i.name === 'labels')!;
    expect(labels.elemType).toBe(DataType.INT64);
    expect(labels.shape).toEqual(['batch']);
    const sce = h.eval.graph.nodes.find((n) => n.opType === 'SoftmaxCrossEntropyLoss')!;
    expect(sce.attrs.reduction).toEqual({ type: 'string', value: 'mean' });
    expect(h.eval.graph.outputs[0]).toMatchObject({ name: 'loss', elemType: DataType.FLOAT, shape: [] });
  });
});

describe('existing head vs new head', () => {
  it('keeps the torch export\'s classifier: infer logits equal the original model\'s and the reference', async () => {
    const model = loadModel(TORCH_EVAL);
    const h = attachHead(model, { kind: 'classification', numLabels: 2 });
    expect(h.head).toEqual({ reused: true, params: ['classifier.weight', 'classifier.bias'] });
    const feeds = bertFeeds(model, 1000);
    const mine = await run(await session(h.infer), feeds);
    const original = await run(await session(model), feeds);
    expect(mine.logits).toEqual(original.logits);
    mine.logits.flat().forEach((v, i) => expect(v).toBeCloseTo(torchExpected.expected_logits.flat()[i]!, 5));
  });

  it('newHead re-initialises it: normal(0, 0.02) weight from the seed, zero bias, different logits', async () => {
    const model = loadModel(TORCH_EVAL);
    const a = attachHead(model, { kind: 'classification', numLabels: 2 }, { newHead: true, seed: 7 });
    const b = attachHead(model, { kind: 'classification', numLabels: 2 }, { newHead: true, seed: 7 });
    const c = attachHead(model, { kind: 'classification', numLabels: 2 }, { newHead: true, seed: 8 });
    expect(a.head).toEqual({ reused: false, params: ['classifier.weight', 'classifier.bias'] });
    const weight = (m: Model) => Array.from(tensorFloat32(m.graph.initializers.get('classifier.weight')!));
    expect(weight(a.infer)).toEqual(weight(b.infer));
    expect(weight(a.infer)).not.toEqual(weight(c.infer));
    expect(weight(a.infer)).not.toEqual(Array.from(tensorFloat32(model.graph.initializers.get('classifier.weight')!)));
    const w = weight(a.infer);
    expect(w).toHaveLength(2 * 32);
    const std = Math.sqrt(w.reduce((s, v) => s + v * v, 0) / w.length);
    expect(std).toBeGreaterThan(0.01);
    expect(std).toBeLessThan(0.03);
    expect(Array.from(tensorFloat32(a.infer.graph.initializers.get('classifier.bias')!))).toEqual([0, 0]);
    // The new head is read through Transpose → MatMul (HF layout [labels, hidden]).
    const t = a.infer.graph.nodes.find((n) => n.inputs.includes('classifier.weight'))!;
    expect(t.opType).toBe('Transpose');
    const feeds = bertFeeds(model, 1000);
    const mine = await run(await session(a.infer), feeds);
    const original = await run(await session(model), feeds);
    expect(mine.logits).not.toEqual(original.logits);
  });

  it('newHead with another label count replaces the head', async () => {
    const model = loadModel(TORCH_EVAL);
    const h = attachHead(model, { kind: 'classification', numLabels: 5 }, { newHead: true });
    expect(h.infer.graph.initializers.get('classifier.weight')!.dims).toEqual([5, 32]);
    const out = await run(await session(h.infer), bertFeeds(model, 1000));
    expect(out.logitsDims).toEqual([2, 5]);
  });

  it('newHead on RoBERTa re-initialises classifier.dense too', () => {
    const model = tinyBert({ config: tinyConfig('roberta'), numLabels: 2 });
    const h = attachHead(model, { kind: 'classification', numLabels: 2 }, { newHead: true });
    expect(h.head.params).toEqual(['classifier.dense.weight', 'classifier.dense.bias', 'classifier.out_proj.weight', 'classifier.out_proj.bias']);
    const before = Array.from(tensorFloat32(model.graph.initializers.get('classifier.dense.weight')!));
    const after = Array.from(tensorFloat32(h.infer.graph.initializers.get('classifier.dense.weight')!));
    expect(after).not.toEqual(before);
    expect(after).toHaveLength(before.length);
  });

  it('a head with another label count is an error naming both counts and --new-head', () => {
    const model = loadModel(TORCH_EVAL);
    expect(() => attachHead(model, { kind: 'classification', numLabels: 3 }, { label: 'tiny.onnx' })).toThrow(ModtuneError);
    expect(() => attachHead(model, { kind: 'classification', numLabels: 3 }, { label: 'tiny.onnx' })).toThrow(
      /tiny\.onnx: .*'classifier\.weight'.* 2 labels but the task has 3 labels; use --new-head/,
    );
    expect(() => attachHead(model, { kind: 'regression' })).toThrow(/2 labels but a regression head has 1 output.*--new-head/);
    expect(() => attachHead(tinyBert({ regression: true }), { kind: 'classification', numLabels: 2 })).toThrow(/has 1 output but the task has 2 labels/);
  });

  it('rejects bad specs', () => {
    const model = tinyBert();
    expect(() => attachHead(model, { kind: 'classification', numLabels: 1 })).toThrow(/≥ 2/);
    expect(() => attachHead(model, { kind: 'classification', numLabels: 2.5 })).toThrow(ModtuneError);
    expect(() => attachHead(model, { kind: 'ranking' } as unknown as HeadSpec)).toThrow(/unknown head kind 'ranking'/);
  });
});

describe('models without BERT structure', () => {
  it('an ORT attention test graph (no embeddings) is refused with what was looked for', () => {
    const model = loadModel(path.join(FIXTURES, 'ort_attention_distilbert.onnx'));
    expect(() => attachHead(model, { kind: 'classification', numLabels: 2 }, { label: 'attn.onnx' })).toThrow(
      /attn\.onnx: no BERT structure: .*embedding/,
    );
  });

  it('an MLP is refused', () => {
    const g = new Graph();
    g.inputs = [{ name: 'x', elemType: DataType.FLOAT, shape: ['batch', 4] }];
    g.outputs = [{ name: 'logits', elemType: DataType.FLOAT, shape: ['batch', 2] }];
    g.addInitializer(scalarF32('w', 0.5, []));
    g.addNode({ opType: 'Mul', inputs: ['x', 'w'], outputs: ['logits'] });
    expect(() => attachHead(newModel(g, 17), { kind: 'classification', numLabels: 2 })).toThrow(/no BERT structure: found no LayerNorm/);
  });

  it('a BERT whose embeddings LayerNorm feeds no encoder layer is refused', () => {
    const model = tinyBert();
    const g = model.graph.clone();
    // Cut the graph after the embeddings: the LayerNorm output becomes the only output.
    const ln = g.nodes.find((n) => n.opType === 'LayerNormalization')!;
    g.outputs = [{ name: ln.outputs[0]!, elemType: DataType.FLOAT }];
    g.removeDeadNodes();
    expect(() => attachHead({ ...model, graph: g }, { kind: 'classification', numLabels: 2 })).toThrow(/not followed by any encoder layer/);
  });
});
