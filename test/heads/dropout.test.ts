import { describe, expect, it } from 'vitest';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { ModtuneError } from '../../src/errors.js';
import { attachHead, lowerDropouts } from '../../src/heads/index.js';
import { DataType } from '../../src/onnx/dtype.js';
import { Graph, Model, cloneModel } from '../../src/onnx/graph.js';
import { loadModel, newModel } from '../../src/onnx/io.js';
import { makeTensor, scalarF32 } from '../../src/onnx/tensor.js';
import { FIXTURES, TORCH113 } from '../helpers/paths.js';
import { bertFeeds, classLabels, dropoutNodes, dropoutSettings, run, session, tinyBert, tinyConfig } from './helpers.js';

const TORCH_TRAINING = path.join(TORCH113, 'tiny_bert_torch113_training.onnx');
const spec2 = { kind: 'classification', numLabels: 2 } as const;

function producerOp(m: Model, value: string): string | undefined {
  return m.graph.nodes.find((n) => n.outputs.includes(value))?.opType;
}
function consumerOps(m: Model, value: string): string[] {
  return m.graph.nodes.filter((n) => n.inputs.includes(value)).map((n) => n.opType);
}

describe('dropout placement', () => {
  it('builder model: 1 + 3 per layer + 1 Dropout nodes in train, none in eval/infer', () => {
    for (const layers of [2, 3]) {
      const model = tinyBert({ config: tinyConfig('bert', { numHiddenLayers: layers }) });
      const h = attachHead(model, spec2);
      expect(dropoutNodes(h.train)).toHaveLength(1 + 3 * layers + 1);
      expect(dropoutNodes(h.eval)).toHaveLength(0);
      expect(dropoutNodes(h.infer)).toHaveLength(0);
    }
  });

  it('builder model: each Dropout sits where BERT applies it', () => {
    const h = attachHead(tinyBert(), spec2);
    const t = h.train;
    const at = (name: string) => {
      const n = dropoutNodes(t).find((d) => d.name === name);
      expect(n, name).toBeDefined();
      return { from: producerOp(t, n!.inputs[0]!), to: consumerOps(t, n!.outputs[0]!), node: n! };
    };
    const emb = at('/dropout/embeddings');
    expect(emb.from).toBe('LayerNormalization');
    expect(emb.to.sort()).toEqual(['Add', 'MatMul', 'MatMul', 'MatMul']); // q, k, v and the first residual
    for (const layer of [0, 1]) {
      const probs = at(`/dropout/layer.${layer}/attention_probs`);
      expect(probs.from).toBe('Softmax');
      expect(probs.to).toEqual(['MatMul']);
      for (const where of ['attention_output', 'output']) {
        const d = at(`/dropout/layer.${layer}/${where}`);
        expect(d.from).toBe('Add'); // the dense bias Add
        expect(d.to).toEqual(['Add']); // the residual
        const residual = t.graph.nodes.find((n) => n.inputs.includes(d.node.outputs[0]!))!;
        expect(consumerOps(t, residual.outputs[0]!)).toContain('LayerNormalization');
      }
    }
    const cls = at('/dropout/classifier');
    expect(cls.from).toBe('Tanh');
    expect(cls.to).toEqual(['MatMul']);
    for (const d of dropoutNodes(t)) {
      expect(dropoutSettings(t, d.name)).toEqual({ ratio: expect.closeTo(0.1, 6), training: 1 });
      expect(d.attrs.seed).toBeUndefined();
    }
  });

  it('rates come from the model config; classifier_dropout null falls back to hidden_dropout_prob', () => {
    const config = tinyConfig('bert', { hiddenDropoutProb: 0.2, attentionProbsDropoutProb: 0.3, classifierDropout: 0.4 });
    const h = attachHead(tinyBert({ config }), spec2);
    const ratio = (name: string) => dropoutSettings(h.train, name).ratio;
    expect(ratio('/dropout/embeddings')).toBeCloseTo(0.2, 6);
    expect(ratio('/dropout/layer.1/attention_probs')).toBeCloseTo(0.3, 6);
    expect(ratio('/dropout/layer.0/attention_output')).toBeCloseTo(0.2, 6);
    expect(ratio('/dropout/layer.1/output')).toBeCloseTo(0.2, 6);
    expect(ratio('/dropout/classifier')).toBeCloseTo(0.4, 6);

    const fallback = attachHead(tinyBert({ config: { ...config, classifierDropout: null } }), spec2);
    expect(dropoutSettings(fallback.train, '/dropout/classifier').ratio).toBeCloseTo(0.2, 6);

    const overridden = attachHead(tinyBert({ config }), spec2, { dropout: 0.05 });
    for (const d of dropoutNodes(overridden.train)) expect(dropoutSettings(overridden.train, d.name).ratio).toBeCloseTo(0.05, 6);
  });

  it('a config rate of 0 leaves that site without a Dropout', () => {
    const config = tinyConfig('bert', { attentionProbsDropoutProb: 0 });
    const h = attachHead(tinyBert({ config }), spec2);
    expect(dropoutNodes(h.train).some((d) => d.name.includes('attention_probs'))).toBe(false);
    expect(dropoutNodes(h.train)).toHaveLength(1 + 2 * 2 + 1);
  });

  it('RoBERTa/ELECTRA heads also drop out the [CLS] vector before classifier.dense', () => {
    for (const family of ['roberta', 'electra'] as const) {
      const h = attachHead(tinyBert({ config: tinyConfig(family), numLabels: 2 }), spec2);
      expect(dropoutNodes(h.train)).toHaveLength(1 + 3 * 2 + 2);
      const d = dropoutNodes(h.train).find((n) => n.name === '/dropout/classifier_input')!;
      expect(producerOp(h.train, d.inputs[0]!)).toBe('Gather');
    }
  });

  it('DistilBERT: no attention-output dropout (1 + 2 per layer + 1), dropout before the classifier', () => {
    const h = attachHead(loadModel(path.join(FIXTURES, 'optimum_tiny-distilbert-sst2.onnx')), spec2);
    const names = dropoutNodes(h.train).map((d) => d.name);
    expect(names).toHaveLength(1 + 2 * 2 + 1);
    expect(names.some((n) => n.includes('attention_output'))).toBe(false);
    const cls = dropoutNodes(h.train).find((d) => d.name === '/dropout/classifier')!;
    expect(producerOp(h.train, cls.inputs[0]!)).toBe('Relu');
  });

  it('exports without Dropout get them inserted at the same places (toy: 5 layers)', () => {
    const h = attachHead(loadModel(path.join(FIXTURES, 'ort_bert_toy_optimized.onnx')), { kind: 'classification', numLabels: 3 });
    expect(dropoutNodes(h.train)).toHaveLength(1 + 3 * 5 + 1);
  });
});

describe('Dropout nodes of a training-mode export', () => {
  const original = loadModel(TORCH_TRAINING);
  const originalNames = dropoutNodes(original).map((d) => d.name).sort();

  it('are reused, not duplicated: same 8 node names, updated to training_mode true at the configured rate', () => {
    expect(originalNames).toHaveLength(8);
    const h = attachHead(original, spec2, { dropout: 0.25 });
    expect(dropoutNodes(h.train).map((d) => d.name).sort()).toEqual(originalNames);
    for (const d of dropoutNodes(h.train)) {
      expect(dropoutSettings(h.train, d.name)).toEqual({ ratio: 0.25, training: 1 });
      expect(d.inputs).toHaveLength(3);
    }
    const outputs = new Set(dropoutNodes(original).map((d) => d.outputs[0]));
    expect(new Set(dropoutNodes(h.train).map((d) => d.outputs[0]))).toEqual(outputs);
  });

  it('are removed from eval and infer, and from train with dropout 0', () => {
    const h = attachHead(original, spec2, { dropout: 0 });
    expect(dropoutNodes(h.train)).toHaveLength(0);
    expect(dropoutNodes(h.eval)).toHaveLength(0);
    expect(dropoutNodes(h.infer)).toHaveLength(0);
  });
});

describe('dropout at run time', () => {
  const NO_OPT = { graphOptimizationLevel: 'disabled' } as const;

  async function lossesOf(m: Model, runs: number, options: Parameters<typeof session>[1] = {}): Promise<number[]> {
    const s = await session(m, options);
    const feeds = { ...bertFeeds(m, 100), labels: classLabels([1, 0]) };
    const out: number[] = [];
    for (let i = 0; i < runs; i++) out.push((await run(s, feeds)).loss!);
    await s.release();
    return out;
  }

  it('stock onnxruntime-node removes a training-mode Dropout whose mask nothing reads (why lowerDropouts exists)', async () => {
    const h = attachHead(tinyBert(), spec2, { dropout: 0.3 });
    expect(new Set(await lossesOf(h.train, 3)).size).toBe(1);
  });

  for (const [what, load] of [
    ['builder model', () => tinyBert()],
    ['torch training export', () => loadModel(TORCH_TRAINING)],
  ] as const) {
    it(`${what}: train loss varies between runs (Dropout ops kept, and lowered), eval loss does not`, async () => {
      const h = attachHead(load(), spec2, { dropout: 0.3 });
      const asOps = await lossesOf(h.train, 3, NO_OPT);
      expect(new Set(asOps).size).toBeGreaterThan(1);
      const lowered = cloneModel(h.train);
      expect(lowerDropouts(lowered)).toBe(dropoutNodes(h.train).length);
      expect(dropoutNodes(lowered)).toHaveLength(0);
      const asRandomOps = await lossesOf(lowered, 3);
      expect(new Set(asRandomOps).size).toBeGreaterThan(1);
      const evalLoss = await lossesOf(h.eval, 3);
      expect(new Set(evalLoss).size).toBe(1);
      // Dropout noise moves the loss around the deterministic one, not somewhere else entirely.
      for (const l of [...asOps, ...asRandomOps]) expect(Math.abs(l - evalLoss[0]!)).toBeLessThan(1);
    });
  }

  it('dropoutSeed gives each node its own seed and the same masks in a new session', async () => {
    const model = tinyBert();
    const a = attachHead(model, spec2, { dropout: 0.3, dropoutSeed: 11 });
    const seeds = dropoutNodes(a.train).map((d) => d.attrs.seed);
    expect(seeds.every((s) => s?.type === 'int')).toBe(true);
    expect(new Set(seeds.map((s) => s!.value)).size).toBe(seeds.length);
    const first = await lossesOf(a.train, 2, NO_OPT);
    expect(await lossesOf(a.train, 2, NO_OPT)).toEqual(first);
    expect(first[0]).not.toBe(first[1]);
    const other = await lossesOf(attachHead(model, spec2, { dropout: 0.3, dropoutSeed: 12 }).train, 2, NO_OPT);
    expect(other).not.toEqual(first);
    // The seeds survive lowering.
    const lowered = cloneModel(a.train);
    lowerDropouts(lowered);
    const l1 = await lossesOf(lowered, 2);
    expect(await lossesOf(lowered, 2)).toEqual(l1);
  });
});

describe('lowerDropouts', () => {
  function dropoutOnly(ratio: number, withMask: boolean): Model {
    const g = new Graph();
    g.inputs = [{ name: 'x', elemType: DataType.FLOAT, shape: [4000] }];
    g.outputs = [{ name: 'y', elemType: DataType.FLOAT, shape: [4000] }];
    const sq = g.addNode({ opType: 'Mul', inputs: ['x', 'x'], outputs: ['x2'] });
    g.addInitializer(scalarF32('ratio', ratio));
    g.addInitializer(makeTensor('mode', DataType.BOOL, [], new Uint8Array([1])));
    g.addNode({ opType: 'Dropout', name: 'drop', inputs: [sq.outputs[0]!, 'ratio', 'mode'], outputs: withMask ? ['d', 'mask'] : ['d'] });
    if (withMask) {
      const m = g.addNode({ opType: 'Cast', inputs: ['mask'], attrs: { to: { type: 'int', value: DataType.FLOAT } } });
      g.addNode({ opType: 'Add', inputs: ['d', m.outputs[0]!], outputs: ['y'] });
    } else {
      g.addNode({ opType: 'Identity', inputs: ['d'], outputs: ['y'] });
    }
    return newModel(g, 17);
  }

  it('keeps Dropout semantics: zeros with probability ratio, the rest scaled by 1/(1 - ratio)', async () => {
    const m = dropoutOnly(0.25, false);
    expect(lowerDropouts(m)).toBe(1);
    expect(m.graph.nodes.map((n) => n.opType)).not.toContain('Dropout');
    const s = await session(m);
    const x = new ort.Tensor('float32', new Float32Array(4000).fill(1), [4000]);
    const y = Array.from((await s.run({ x })).y!.data as Float32Array);
    const zeros = y.filter((v) => v === 0).length;
    expect(zeros / y.length).toBeGreaterThan(0.2);
    expect(zeros / y.length).toBeLessThan(0.3);
    for (const v of y) if (v !== 0) expect(v).toBeCloseTo(1 / 0.75, 6);
    const y2 = Array.from((await s.run({ x })).y!.data as Float32Array);
    expect(y2).not.toEqual(y);
  });

  it('leaves Dropouts whose mask is read unless asked, then the mask is the keep flag', async () => {
    const m = dropoutOnly(0.5, true);
    expect(lowerDropouts(m)).toBe(0);
    expect(lowerDropouts(m, { onlyUnusedMask: false })).toBe(1);
    const s = await session(m);
    const x = new ort.Tensor('float32', new Float32Array(4000).fill(1), [4000]);
    const y = Array.from((await s.run({ x })).y!.data as Float32Array);
    // y = dropout(x) + mask: 0 where dropped, 2 + 1 where kept.
    expect(new Set(y)).toEqual(new Set([0, 3]));
  });
});

describe('dropout option checks', () => {
  it('rejects rates outside [0, 1) and bad config metadata, naming the field', () => {
    const model = tinyBert();
    for (const bad of [1, -0.1, Number.NaN]) {
      expect(() => attachHead(model, spec2, { dropout: bad })).toThrow(ModtuneError);
    }
    expect(() => attachHead(model, spec2, { dropoutSeed: 1.5 })).toThrow(/dropout seed/);
    const cfg = JSON.parse(model.metadata['modtune.config']!);
    const broken = { ...model, metadata: { ...model.metadata, 'modtune.config': JSON.stringify({ ...cfg, hidden_dropout_prob: 'high' }) } };
    expect(() => attachHead(broken, spec2)).toThrow(/'modtune\.config' field 'hidden_dropout_prob'.*\[0, 1\)/);
    const garbage = { ...model, metadata: { ...model.metadata, 'modtune.config': '{not json' } };
    expect(() => attachHead(garbage, spec2)).toThrow(/'modtune\.config' is not a JSON object/);
  });
});
