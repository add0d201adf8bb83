/**
 * Whole-model checks on a tiny BERT: analytic gradients of a classification loss against central
 * differences for a few LayerNorm and classifier entries, and the "pay only for what trains"
 * property (LayerNorm-only backward graphs contain no weight-gradient MatMul).
 */
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { buildBackward } from '../../src/autodiff/backward.js';
import { upgradeOpset } from '../../src/autodiff/opset.js';
import { buildBert } from '../../src/bert/build.js';
import { presetConfig } from '../../src/bert/config.js';
import { DataType } from '../../src/onnx/dtype.js';
import { Graph, Model, Node, cloneModel } from '../../src/onnx/graph.js';
import { encodeModel, loadModel } from '../../src/onnx/io.js';
import { makeTensor, tensorFloat32 } from '../../src/onnx/tensor.js';
import { TORCH113 } from '../helpers/paths.js';
import { ortTensor } from './harness.js';

const BATCH = 2;
const SEQ = 5;
const IDS = [[2, 7, 9, 4, 0], [3, 3, 11, 0, 0]];
const MASK = [[1, 1, 1, 1, 0], [1, 1, 1, 0, 0]];
const LABELS = [1, 0];

/** Append labels → SoftmaxCrossEntropyLoss(logits, labels) → `loss` as the only output. */
function withLoss(model: Model): Model {
  const m = cloneModel(model);
  const g = m.graph;
  g.inputs.push({ name: 'labels', elemType: DataType.INT64, shape: ['batch'] });
  g.addNode({ opType: 'SoftmaxCrossEntropyLoss', inputs: ['logits', 'labels'], outputs: ['loss'], name: '/loss/SoftmaxCrossEntropyLoss' });
  g.outputs = [{ name: 'loss', elemType: DataType.FLOAT, shape: [] }];
  return m;
}

function feeds(): Record<string, ort.Tensor> {
  const i64 = (rows: number[][]) => ortTensor('int64', rows.flat(), [rows.length, rows[0]!.length]);
  return {
    input_ids: i64(IDS),
    attention_mask: i64(MASK),
    token_type_ids: i64(IDS.map((r) => r.map(() => 0))),
    labels: ortTensor('int64', LABELS, [BATCH]),
  };
}

function tinyBert(): Model {
  const config = { ...presetConfig('bert-tiny'), hiddenSize: 16, numHiddenLayers: 2, numAttentionHeads: 2, intermediateSize: 32, vocabSize: 40, maxPositionEmbeddings: 16 };
  const m = withLoss(buildBert({ config, numLabels: 3, seed: 7, perturbLayerNorm: true }));
  // With the 0.02-std initialisation activations shrink layer by layer and the gradients of deep
  // parameters fall below float32 resolution of the loss; unit-scale Linear weights (std ≈ 1/√in)
  // keep every finite difference informative.
  for (const t of m.graph.initializers.values()) {
    if (t.dims.length === 2 && !t.name.includes('embeddings')) {
      const scale = 1 / (0.02 * Math.sqrt(t.dims[1]!));
      m.graph.initializers.set(t.name, makeTensor(t.name, DataType.FLOAT, t.dims, tensorFloat32(t).map((v) => v * scale)));
    }
  }
  return m;
}

/** The torch 1.13 training export with its Dropout nodes switched to inference mode. */
function torchBert(): Model {
  const m = withLoss(loadModel(path.join(TORCH113, 'tiny_bert_torch113_training.onnx')));
  const g = m.graph;
  const off = g.addInitializer(makeTensor('dropout_off', DataType.BOOL, [], [0]));
  for (const n of g.nodes) if (n.opType === 'Dropout') n.inputs[2] = off;
  // The training-mode constants are read by nobody now; left in, ONNX Runtime warns about each.
  g.invalidate();
  g.removeDeadNodes();
  upgradeOpset(m, 17);
  return m;
}

const floatParams = (g: Graph) =>
  [...g.initializers.values()].filter((t) => t.dataType === DataType.FLOAT && t.dims.length > 0 && /^(bert|classifier)\./.test(t.name)).map((t) => t.name);

/** Analytic gradients for `wrt` from one run of the backward model. */
async function analytic(model: Model, wrt: string[]): Promise<Map<string, Float32Array>> {
  const m = cloneModel(model);
  const { gradients } = buildBackward(m.graph, { loss: 'loss', wrt });
  m.graph.outputs.push(...wrt.map((w) => ({ name: gradients.get(w)!, elemType: DataType.FLOAT })));
  const s = await ort.InferenceSession.create(encodeModel(m));
  const out = await s.run(feeds());
  return new Map(wrt.map((w) => [w, out[gradients.get(w)!]!.data as Float32Array]));
}

/**
 * Central differences of the loss for the given entries: the parameters become graph inputs of a
 * forward-only copy so that perturbations are fed, not re-encoded.
 */
async function numeric(model: Model, entries: Array<[string, number]>, eps: number): Promise<number[]> {
  const m = cloneModel(model);
  const names = [...new Set(entries.map(([n]) => n))];
  const values = new Map<string, Float32Array>();
  for (const n of names) {
    const t = m.graph.initializers.get(n)!;
    values.set(n, Float32Array.from(tensorFloat32(t)));
    m.graph.initializers.delete(n);
    m.graph.inputs.push({ name: n, elemType: DataType.FLOAT, shape: t.dims });
  }
  const s = await ort.InferenceSession.create(encodeModel(m));
  const base = feeds();
  const lossWith = async (name: string, index: number, delta: number) => {
    const f: Record<string, ort.Tensor> = { ...base };
    for (const n of names) {
      const v = Float32Array.from(values.get(n)!);
      if (n === name) v[index]! += delta;
      f[n] = new ort.Tensor('float32', v, m.graph.inputs.find((i) => i.name === n)!.shape as number[]);
    }
    return Number((await s.run(f)).loss!.data[0]);
  };
  const out: number[] = [];
  for (const [name, index] of entries) out.push(((await lossWith(name, index, eps)) - (await lossWith(name, index, -eps))) / (2 * eps));
  return out;
}

/**
 * Compare the analytic gradient with central differences on the entries of each parameter with the
 * largest gradients (where float32 differences are informative) plus its first entry.
 */
async function expectFiniteDifferences(model: Model, params: string[]): Promise<void> {
  const grads = await analytic(model, params);
  const entries: Array<[string, number]> = [];
  for (const p of params) {
    const g = grads.get(p)!;
    const order = Array.from(g.keys()).sort((a, b) => Math.abs(g[b]!) - Math.abs(g[a]!));
    for (const i of new Set([order[0]!, order[1]!, 0])) entries.push([p, i]);
  }
  const nums = await numeric(model, entries, 1e-2);
  entries.forEach(([p, i], k) => {
    const a = grads.get(p)![i]!;
    const scale = Math.max(...Array.from(grads.get(p)!, Math.abs));
    expect(Math.abs(a - nums[k]!), `${p}[${i}]: analytic ${a} vs numeric ${nums[k]}`).toBeLessThan(2e-2 * Math.abs(nums[k]!) + 2e-3 * scale + 1e-6);
  });
  for (const p of params) expect(Math.max(...Array.from(grads.get(p)!, Math.abs)), p).toBeGreaterThan(1e-5);
}

/** Backward MatMul nodes and how many forward MatMuls read each parameter (directly or via Transpose). */
function matmulCounts(model: Model, wrt: string[]): { backward: number; weightMatMuls: number } {
  const m = cloneModel(model);
  const prod = new Map<string, Node>();
  for (const n of m.graph.nodes) for (const o of n.outputs) prod.set(o, n);
  const root = (v: string) => (prod.get(v)?.opType === 'Transpose' ? prod.get(v)!.inputs[0]! : v);
  const wset = new Set(wrt);
  const weightMatMuls = m.graph.nodes.filter((n) => n.opType === 'MatMul' && n.inputs.some((i) => wset.has(root(i)))).length;
  const { nodes } = buildBackward(m.graph, { loss: 'loss', wrt });
  return { backward: nodes.filter((n) => n.opType === 'MatMul').length, weightMatMuls };
}

describe('whole-model gradients: tiny BERT from buildBert', () => {
  const model = tinyBert();
  const all = floatParams(model.graph);
  const layerNorms = all.filter((n) => n.includes('LayerNorm'));

  it('LayerNorm and classifier gradients match finite differences', async () => {
    await expectFiniteDifferences(model, [
      'bert.embeddings.LayerNorm.weight',
      'bert.encoder.layer.0.attention.output.LayerNorm.bias',
      'bert.encoder.layer.1.output.LayerNorm.weight',
      'classifier.weight',
      'classifier.bias',
    ]);
  });

  it('attention and embedding gradients match finite differences (full selection)', async () => {
    await expectFiniteDifferences(model, [
      'bert.encoder.layer.1.attention.self.query.weight',
      'bert.encoder.layer.0.attention.self.key.weight',
      'bert.encoder.layer.0.intermediate.dense.weight',
      'bert.embeddings.word_embeddings.weight',
    ]);
  });

  it('a LayerNorm-only selection creates no weight-gradient MatMul', () => {
    const lnOnly = matmulCounts(model, layerNorms);
    const full = matmulCounts(model, all);
    expect(lnOnly.weightMatMuls).toBe(0);
    expect(full.weightMatMuls).toBe(2 * 6 + 2); // six Linear layers per block, pooler, classifier
    expect(full.backward - lnOnly.backward).toBe(full.weightMatMuls);
  });

  it('training only the top layer differentiates nothing below it', () => {
    const top = all.filter((n) => n.includes('layer.1.output.LayerNorm') || n.startsWith('classifier.'));
    const m = cloneModel(model);
    const { nodes } = buildBackward(m.graph, { loss: 'loss', wrt: top });
    // No Softmax/attention backward work at all: the top LayerNorm sits above both attention blocks.
    expect(nodes.filter((n) => n.name.includes('/attention/'))).toEqual([]);
    expect(nodes.filter((n) => n.name.includes('layer.0'))).toEqual([]);
  });
});

describe('whole-model gradients: torch 1.13 training export', () => {
  const model = torchBert();
  const all = floatParams(model.graph);
  const layerNorms = all.filter((n) => n.includes('LayerNorm'));

  it('LayerNorm (decomposed) and classifier (Gemm) gradients match finite differences, dropout in inference mode', async () => {
    await expectFiniteDifferences(model, [
      'bert.embeddings.LayerNorm.weight',
      'bert.encoder.layer.1.attention.output.LayerNorm.bias',
      'classifier.weight',
      'classifier.bias',
      'bert.pooler.dense.weight',
    ]);
  });

  it('a LayerNorm-only selection creates no weight-gradient MatMul or Gemm', () => {
    const m = cloneModel(model);
    const { nodes, gradients } = buildBackward(m.graph, { loss: 'loss', wrt: layerNorms });
    const lnOnly = matmulCounts(model, layerNorms);
    const full = matmulCounts(model, all);
    expect(full.weightMatMuls).toBe(2 * 6); // pooler and classifier are Gemm here
    expect(full.backward - lnOnly.backward).toBe(full.weightMatMuls);
    // Gemm layers (pooler, classifier) frozen: only their input gradient, one Gemm each.
    expect(nodes.filter((n) => n.opType === 'Gemm')).toHaveLength(2);
    expect(gradients.size).toBe(layerNorms.length);
  });
});
