import { describe, expect, it } from 'vitest';
import { buildBert, countParameters } from '../../src/bert/build.js';
import { parseHfConfig } from '../../src/bert/config.js';
import { WeightMap, weightsFromModel } from '../../src/bert/weights.js';
import { tensorFloat32 } from '../../src/onnx/tensor.js';
import type { Model } from '../../src/onnx/graph.js';
import { floats, maxAbsDiff, run, tinyConfig } from './helpers.js';

const param = (m: Model, name: string) => tensorFloat32(m.graph.initializers.get(name)!);
/** Bit-identical float arrays (vitest's deep equality is slow on large typed arrays). */
const sameBits = (a: Float32Array, b: Float32Array) =>
  Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
const stats = (a: Float32Array) => {
  let s = 0, s2 = 0;
  for (const v of a) { s += v; s2 += v * v; }
  const mean = s / a.length;
  return { mean, std: Math.sqrt(s2 / a.length - mean * mean) };
};

/** y = x Wᵀ + b for one row, W in [out, in] layout. */
function linear(x: number[], w: Float32Array, b: Float32Array): number[] {
  const n = x.length;
  return Array.from(b, (bias, o) => x.reduce((s, v, i) => s + v * w[o * n + i]!, bias));
}
/** Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7). */
function erf(x: number): number {
  const t = 1 / (1 + 0.3275911 * Math.abs(x));
  const y = 1 - ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * Math.exp(-x * x);
  return x >= 0 ? y : -y;
}
const gelu = (x: number) => 0.5 * x * (1 + erf(x / Math.SQRT2));
const geluTanh = (x: number) => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)));

/** Copy weights under another prefix (e.g. roberta.* → bert.*). */
function renamePrefix(w: WeightMap, from: string, to: string): WeightMap {
  return new Map([...w].map(([k, v]) => [k.startsWith(`${from}.`) ? `${to}.${k.slice(from.length + 1)}` : k, v]));
}

const ids = [[2, 17, 33, 41, 9, 3], [2, 50, 60, 3, 0, 0]];
const mask = [[1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0]];

describe('random init', () => {
  it('is Hugging Face\'s BERT init: normal(0, 0.02) weights, zero padding row and biases, LayerNorm 1/0; seeded', () => {
    const config = tinyConfig({ vocab_size: 2000, hidden_size: 64, intermediate_size: 128, num_attention_heads: 4 });
    const m = buildBert({ config, seed: 7 });
    const words = param(m, 'bert.embeddings.word_embeddings.weight');
    const { mean, std } = stats(words.subarray(64));
    expect(Math.abs(mean)).toBeLessThan(0.001);
    expect(std).toBeGreaterThan(0.0195);
    expect(std).toBeLessThan(0.0205);
    expect(Array.from(words.subarray(0, 64)).every((v) => v === 0)).toBe(true); // pad_token_id 0
    expect(stats(param(m, 'bert.encoder.layer.1.intermediate.dense.weight')).std).toBeCloseTo(0.02, 3);
    expect(Array.from(param(m, 'bert.encoder.layer.0.attention.self.query.bias')).every((v) => v === 0)).toBe(true);
    expect(Array.from(param(m, 'bert.encoder.layer.0.output.LayerNorm.weight')).every((v) => v === 1)).toBe(true);
    expect(Array.from(param(m, 'bert.encoder.layer.0.output.LayerNorm.bias')).every((v) => v === 0)).toBe(true);
    const again = buildBert({ config, seed: 7 });
    const other = buildBert({ config, seed: 8 });
    for (const name of m.graph.initializers.keys()) expect(sameBits(param(again, name), param(m, name)), name).toBe(true);
    expect(sameBits(param(other, 'bert.pooler.dense.weight'), param(m, 'bert.pooler.dense.weight'))).toBe(false);
  });

  it('perturbLayerNorm adds small seeded noise to LayerNorm weights and biases only', () => {
    const config = tinyConfig({ hidden_size: 256, num_attention_heads: 4 });
    const plain = buildBert({ config, seed: 3 });
    const a = buildBert({ config, seed: 3, perturbLayerNorm: true });
    const b = buildBert({ config, seed: 3, perturbLayerNorm: true });
    const w = param(a, 'bert.encoder.layer.1.attention.output.LayerNorm.weight');
    const bias = param(a, 'bert.embeddings.LayerNorm.bias');
    expect(Math.abs(stats(w).mean - 1)).toBeLessThan(0.01);
    expect(stats(w).std).toBeGreaterThan(0.01);
    expect(stats(w).std).toBeLessThan(0.03);
    expect(stats(bias).std).toBeGreaterThan(0.01);
    expect(param(b, 'bert.embeddings.LayerNorm.bias')).toEqual(bias);
    expect(Array.from(param(a, 'bert.encoder.layer.0.intermediate.dense.bias')).every((v) => v === 0)).toBe(true);
    expect(param(plain, 'bert.encoder.layer.1.attention.output.LayerNorm.weight')).not.toEqual(w);
  });

  it('refuses configs made in code that the graph cannot have', () => {
    expect(() => buildBert({ config: { ...tinyConfig(), numAttentionHeads: 3 } })).toThrow(/hiddenSize 16 is not a multiple of numAttentionHeads 3/);
    expect(() => buildBert({ config: { ...tinyConfig(), numHiddenLayers: 0 } })).toThrow(/numHiddenLayers should be a positive integer, got 0/);
    expect(() => buildBert({ config: tinyConfig(), numLabels: -1 })).toThrow(/numLabels must be a non-negative integer/);
  });

  it("init 'zeros' gives zero weights and LayerNorm weight 1", () => {
    const m = buildBert({ config: tinyConfig(), init: 'zeros', numLabels: 2 });
    for (const [name] of m.graph.initializers) {
      const v = param(m, name);
      const want = name.endsWith('LayerNorm.weight') ? 1 : 0;
      expect(v.every((x) => x === want), name).toBe(true);
    }
  });
});

describe('BERT graph semantics in onnxruntime', () => {
  it('masked positions influence nothing, as with Hugging Face\'s (1 - mask) * min additive mask', async () => {
    const m = buildBert({ config: tinyConfig(), seed: 1, perturbLayerNorm: true });
    const padded = await run(m, { input_ids: [[2, 17, 33, 5, 5]], attention_mask: [[1, 1, 1, 0, 0]] });
    const otherPad = await run(m, { input_ids: [[2, 17, 33, 70, 80]], attention_mask: [[1, 1, 1, 0, 0]] });
    const short = await run(m, { input_ids: [[2, 17, 33]] });
    expect(padded.last_hidden_state!.dims).toEqual([1, 5, 16]);
    const firstThree = (t: typeof padded) => floats(t.last_hidden_state).slice(0, 3 * 16);
    expect(maxAbsDiff(firstThree(padded), firstThree(short))).toBeLessThan(1e-5);
    expect(maxAbsDiff(firstThree(padded), firstThree(otherPad))).toBeLessThan(1e-6);
    expect(maxAbsDiff(floats(padded.pooler_output), floats(short.pooler_output))).toBeLessThan(1e-5);
    // Unmasked, the same tokens do change the result.
    const unmasked = await run(m, { input_ids: [[2, 17, 33, 70, 80]] });
    expect(maxAbsDiff(firstThree(unmasked), firstThree(otherPad))).toBeGreaterThan(1e-3);
  });

  for (const act of ['gelu', 'gelu_new', 'gelu_pytorch_tanh', 'relu'] as const) {
    it(`hidden_act ${act} computes its formula`, async () => {
      const m = buildBert({ config: tinyConfig({ hidden_act: act }), seed: 2 });
      const pre = '/bert/encoder/layer.0/intermediate/dense/Add_output_0';
      const post = m.graph.nodes.find((n) => n.name === '/bert/encoder/layer.0/output/dense/MatMul')!.inputs[0]!;
      const out = await run(m, { input_ids: ids, attention_mask: mask }, [pre, post]);
      const f = act === 'gelu' ? gelu : act === 'relu' ? (x: number) => Math.max(0, x) : geluTanh;
      const x = floats(out[pre]);
      expect(x.length).toBe(2 * 6 * 32);
      expect(maxAbsDiff(floats(out[post]), x.map(f))).toBeLessThan(1e-6);
      expect(m.graph.nodes.some((n) => n.opType === (act === 'gelu' ? 'Erf' : act === 'relu' ? 'Relu' : 'Tanh'))).toBe(true);
    });
  }

  it('a regression head has one output and says so in the config metadata', async () => {
    const m = buildBert({ config: tinyConfig(), regression: true, seed: 4 });
    const out = await run(m, { input_ids: ids, attention_mask: mask });
    expect(out.logits!.dims).toEqual([2, 1]);
    expect(JSON.parse(m.metadata['modtune.config']!)).toMatchObject({ num_labels: 1, problem_type: 'regression' });
    expect(() => buildBert({ config: tinyConfig(), regression: true, numLabels: 2 })).toThrow(/regression head has 1 output/);
  });

  it('the classifier reads the pooled output; no pooler means no BERT head', async () => {
    const m = buildBert({ config: tinyConfig(), numLabels: 3, seed: 5 });
    const out = await run(m, { input_ids: ids, attention_mask: mask }, ['/bert/pooler/activation/Tanh_output_0']);
    const pooled = floats(out['/bert/pooler/activation/Tanh_output_0']);
    const want = [0, 1].flatMap((r) => linear(pooled.slice(r * 16, r * 16 + 16), param(m, 'classifier.weight'), param(m, 'classifier.bias')));
    expect(maxAbsDiff(floats(out.logits), want)).toBeLessThan(1e-5);
    expect(() => buildBert({ config: tinyConfig(), numLabels: 2, pooler: false })).toThrow(/BERT's classification head reads the pooler's output/);
    const noPooler = buildBert({ config: tinyConfig(), pooler: false });
    expect(noPooler.graph.outputs.map((o) => o.name)).toEqual(['last_hidden_state']);
    expect([...noPooler.graph.initializers.keys()].some((n) => n.includes('pooler'))).toBe(false);
  });
});

describe('RoBERTa', () => {
  const robertaConfig = (over: Record<string, unknown> = {}) =>
    tinyConfig({ model_type: 'roberta', pad_token_id: 1, type_vocab_size: 1, max_position_embeddings: 42, layer_norm_eps: 1e-5, ...over });

  it('builds, runs with the right shapes, and names parameters roberta.*', async () => {
    const m = buildBert({ config: robertaConfig(), seed: 1 });
    const out = await run(m, { input_ids: ids, attention_mask: mask });
    expect(out.last_hidden_state!.dims).toEqual([2, 6, 16]);
    expect(out.pooler_output!.dims).toEqual([2, 16]);
    expect(m.graph.initializers.get('roberta.embeddings.token_type_embeddings.weight')!.dims).toEqual([1, 16]);
    expect(m.graph.nodes[0]!.name.startsWith('/roberta/')).toBe(true);
    // Padding rows of the word and position tables start at zero (padding_idx = pad_token_id).
    expect(param(m, 'roberta.embeddings.position_embeddings.weight').subarray(16, 32).every((v) => v === 0)).toBe(true);
  });

  it('numbers positions from padding_idx + 1, skipping padding tokens (equals BERT with a shifted table)', async () => {
    const config = robertaConfig();
    const rob = buildBert({ config, seed: 9, perturbLayerNorm: true, pooler: false });
    // BERT position p ↔ RoBERTa position id p + pad + 1.
    const w = renamePrefix(weightsFromModel(rob), 'roberta', 'bert');
    const table = w.get('bert.embeddings.position_embeddings.weight')!;
    const shift = 2 * 16;
    w.set('bert.embeddings.position_embeddings.weight', { shape: [40, 16], data: table.data.slice(shift, shift + 40 * 16) });
    const bert = buildBert({ config: tinyConfig({ max_position_embeddings: 40, type_vocab_size: 1, layer_norm_eps: 1e-5 }), weights: w, pooler: false });
    const feeds = { input_ids: [[0, 17, 33, 41, 9, 2], [0, 50, 60, 2, 1, 1]], attention_mask: mask };
    const r = floats((await run(rob, feeds)).last_hidden_state);
    const b = floats((await run(bert, feeds)).last_hidden_state);
    expect(maxAbsDiff(r.slice(0, 6 * 16), b.slice(0, 6 * 16))).toBeLessThan(1e-5);
    expect(maxAbsDiff(r.slice(6 * 16, 10 * 16), b.slice(6 * 16, 10 * 16))).toBeLessThan(1e-5);
    // Left padding does not move the other tokens' positions.
    const left = floats((await run(rob, { input_ids: [[1, 1, 0, 50, 60, 2]], attention_mask: [[0, 0, 1, 1, 1, 1]] })).last_hidden_state);
    expect(maxAbsDiff(left.slice(2 * 16), r.slice(6 * 16, 10 * 16))).toBeLessThan(1e-5);
  });

  it('has Hugging Face\'s RobertaClassificationHead: out_proj(tanh(dense(first token))), no pooler', async () => {
    const m = buildBert({ config: robertaConfig(), numLabels: 3, seed: 2 });
    expect([...m.graph.initializers.keys()].filter((n) => n.startsWith('classifier.'))).toEqual(['classifier.dense.weight', 'classifier.dense.bias', 'classifier.out_proj.weight', 'classifier.out_proj.bias']);
    expect([...m.graph.initializers.keys()].some((n) => n.includes('pooler'))).toBe(false);
    const body = buildBert({ config: robertaConfig(), weights: weightsFromModel(m), pooler: false });
    const h = floats((await run(body, { input_ids: ids, attention_mask: mask })).last_hidden_state);
    const logits = floats((await run(m, { input_ids: ids, attention_mask: mask })).logits);
    const want = [0, 1].flatMap((r) => {
      const dense = linear(h.slice(r * 6 * 16, r * 6 * 16 + 16), param(m, 'classifier.dense.weight'), param(m, 'classifier.dense.bias')).map(Math.tanh);
      return linear(dense, param(m, 'classifier.out_proj.weight'), param(m, 'classifier.out_proj.bias'));
    });
    expect(maxAbsDiff(logits, want)).toBeLessThan(1e-5);
    expect(() => buildBert({ config: robertaConfig(), numLabels: 2, pooler: true })).toThrow(/RoBERTa's classification head reads the first token/);
  });
});

describe('ELECTRA', () => {
  const electraConfig = (over: Record<string, unknown> = {}) => tinyConfig({ model_type: 'electra', embedding_size: 8, ...over });

  it('projects narrow embeddings up with embeddings_project and runs with the right shapes', async () => {
    const m = buildBert({ config: electraConfig(), seed: 1 });
    expect(m.graph.initializers.get('electra.embeddings.word_embeddings.weight')!.dims).toEqual([100, 8]);
    expect(m.graph.initializers.get('electra.embeddings.LayerNorm.weight')!.dims).toEqual([8]);
    expect(m.graph.initializers.get('electra.embeddings_project.weight')!.dims).toEqual([16, 8]);
    expect(m.graph.nodes.some((n) => n.name === '/electra/embeddings_project/MatMul')).toBe(true);
    const out = await run(m, { input_ids: ids, attention_mask: mask });
    expect(Object.keys(out)).toEqual(['last_hidden_state']); // ELECTRA has no pooler
    expect(out.last_hidden_state!.dims).toEqual([2, 6, 16]);
    expect(() => buildBert({ config: electraConfig(), pooler: true })).toThrow(/ELECTRA models have no pooler/);
  });

  it('with embedding_size = hidden_size, is BERT under another name', async () => {
    const e = buildBert({ config: electraConfig({ embedding_size: 16 }), seed: 3, perturbLayerNorm: true });
    expect([...e.graph.initializers.keys()].some((n) => n.includes('embeddings_project'))).toBe(false);
    const b = buildBert({ config: tinyConfig(), weights: renamePrefix(weightsFromModel(e), 'electra', 'bert'), pooler: false });
    const feeds = { input_ids: ids, attention_mask: mask, token_type_ids: [[0, 0, 0, 1, 1, 1], [0, 0, 1, 1, 0, 0]] };
    expect(maxAbsDiff(floats((await run(e, feeds)).last_hidden_state), floats((await run(b, feeds)).last_hidden_state))).toBeLessThan(1e-6);
  });

  it('has Hugging Face\'s ElectraClassificationHead: out_proj(gelu(dense(first token)))', async () => {
    const m = buildBert({ config: electraConfig(), numLabels: 2, seed: 2 });
    const body = buildBert({ config: electraConfig(), weights: weightsFromModel(m) });
    const h = floats((await run(body, { input_ids: ids, attention_mask: mask })).last_hidden_state);
    const out = await run(m, { input_ids: ids, attention_mask: mask });
    expect(out.logits!.dims).toEqual([2, 2]);
    const want = [0, 1].flatMap((r) => {
      const dense = linear(h.slice(r * 6 * 16, r * 6 * 16 + 16), param(m, 'classifier.dense.weight'), param(m, 'classifier.dense.bias')).map(gelu);
      return linear(dense, param(m, 'classifier.out_proj.weight'), param(m, 'classifier.out_proj.bias'));
    });
    expect(maxAbsDiff(floats(out.logits), want)).toBeLessThan(1e-5);
  });
});

describe('loading weights', () => {
  const config = tinyConfig();
  const source = buildBert({ config, seed: 11, perturbLayerNorm: true, numLabels: 2 });
  const weights = () => weightsFromModel(source);

  it('accepts prefix-less names, gamma/beta LayerNorm names, and ignores buffers and other heads', async () => {
    const renamed: WeightMap = new Map();
    for (const [k, v] of weights()) {
      const name = k.startsWith('bert.') ? k.slice(5) : k;
      renamed.set(name.replace(/LayerNorm\.weight$/, 'LayerNorm.gamma').replace(/LayerNorm\.bias$/, 'LayerNorm.beta'), v);
    }
    renamed.set('embeddings.position_ids', { shape: [1, 40], data: new Float32Array(40) });
    renamed.set('cls.predictions.bias', { shape: [100], data: new Float32Array(100) });
    const m = buildBert({ config, weights: renamed, numLabels: 2 });
    const feeds = { input_ids: ids, attention_mask: mask };
    expect(floats((await run(m, feeds)).logits)).toEqual(floats((await run(source, feeds)).logits));
  });

  it('initialises a head (and a BERT pooler) that the checkpoint lacks, seeded', () => {
    const body = new Map([...weights()].filter(([k]) => !k.startsWith('classifier') && !k.includes('pooler')));
    const a = buildBert({ config, weights: body, numLabels: 4, seed: 1 });
    const b = buildBert({ config, weights: body, numLabels: 4, seed: 1 });
    expect(a.graph.initializers.get('classifier.weight')!.dims).toEqual([4, 16]);
    expect(param(a, 'classifier.weight')).toEqual(param(b, 'classifier.weight'));
    expect(stats(param(a, 'bert.pooler.dense.weight')).std).toBeGreaterThan(0.01);
    // Loaded weights are used in place, not copied.
    expect(param(a, 'bert.encoder.layer.0.attention.self.key.weight').buffer).toBe(body.get('bert.encoder.layer.0.attention.self.key.weight')!.data.buffer);
    // Without a head, a checkpoint without a pooler gives a model without one.
    expect(buildBert({ config, weights: body }).graph.outputs.map((o) => o.name)).toEqual(['last_hidden_state']);
  });

  it('names missing tensors (a few, then "and N more")', () => {
    const w = weights();
    for (const k of [...w.keys()].filter((k) => k.startsWith('bert.encoder.layer.1.attention'))) w.delete(k);
    expect(() => buildBert({ config, weights: w, weightsLabel: 'ckpt.safetensors', numLabels: 2 })).toThrow(
      /^ckpt\.safetensors: weights do not match the config: missing 10: bert\.encoder\.layer\.1\.attention\.self\.query\.weight, bert\.encoder\.layer\.1\.attention\.self\.query\.bias, bert\.encoder\.layer\.1\.attention\.self\.key\.weight and 7 more$/,
    );
  });

  it('names tensors of the wrong shape, unexpected encoder tensors, and partial heads', () => {
    const w = weights();
    w.set('bert.embeddings.word_embeddings.weight', { shape: [99, 16], data: new Float32Array(99 * 16) });
    w.set('bert.encoder.layer.2.output.dense.bias', { shape: [16], data: new Float32Array(16) });
    expect(() => buildBert({ config, weights: w, numLabels: 2 })).toThrow(
      /weights: weights do not match the config: wrong shape 1: bert\.embeddings\.word_embeddings\.weight \[99, 16\] \(expected \[100, 16\]\); unexpected 1: bert\.encoder\.layer\.2\.output\.dense\.bias$/,
    );
    const partial = weights();
    partial.delete('classifier.bias');
    expect(() => buildBert({ config, weights: partial, numLabels: 2 })).toThrow(/missing 1: classifier\.bias/);
    expect(() => buildBert({ config, weights: weights(), numLabels: 5 })).toThrow(/wrong shape 2: classifier\.weight \[2, 16\] \(expected \[5, 16\]\), classifier\.bias \[2\] \(expected \[5\]\)/);
    expect(() => buildBert({ config: tinyConfig({ model_type: 'roberta', pad_token_id: 1 }), weights: weights() })).toThrow(/no tensor is named 'roberta\.\*'/);
    expect(() => buildBert({ config, weights: weights(), perturbLayerNorm: true })).toThrow(/perturbLayerNorm applies to initialised models only/);
  });

  it('counts a built model\'s parameters', () => {
    expect(countParameters(source)).toBe([...weights().values()].reduce((s, t) => s + t.data.length, 0));
  });
});
