import { describe, expect, it } from 'vitest';
import * as path from 'node:path';
import { discoverParameters } from '../../src/modules/discover.js';
import { selectParameters } from '../../src/modules/select.js';
import { parseSpec } from '../../src/modules/spec.js';
import type { ParameterInfo, Selection } from '../../src/modules/types.js';
import { loadModel } from '../../src/onnx/io.js';
import { FIXTURES, TORCH113 } from '../helpers/paths.js';

/** torch 1.13 eval export: 2 layers, hidden 32, pooler, 2-label classifier. */
const tiny = discoverParameters(loadModel(path.join(TORCH113, 'tiny_bert_torch113.onnx')));
/** keras2onnx: 24 layers, hidden 8, no pooler, no classifier (its QA head is not selectable). */
const deep = discoverParameters(loadModel(path.join(FIXTURES, 'ort_TFBertForQuestionAnswering_keras2onnx.onnx')));

const hf = (sel: Selection) => sel.parameters.map((p) => p.hfName);
const sum = (ps: ParameterInfo[]) => ps.reduce((s, p) => s + p.size, 0);
const CLASSIFIER = ['classifier.weight', 'classifier.bias'];
const LN = (l: number, which: 'attention.output' | 'output', role: 'weight' | 'bias') => `bert.encoder.layer.${l}.${which}.LayerNorm.${role}`;

describe('selectParameters: spec forms', () => {
  it('a group selects its modules everywhere, plus the classifier', () => {
    const sel = selectParameters(tiny, 'layernorm');
    expect(hf(sel)).toEqual([
      'bert.embeddings.LayerNorm.weight', 'bert.embeddings.LayerNorm.bias',
      LN(0, 'attention.output', 'weight'), LN(0, 'attention.output', 'bias'), LN(0, 'output', 'weight'), LN(0, 'output', 'bias'),
      LN(1, 'attention.output', 'weight'), LN(1, 'attention.output', 'bias'), LN(1, 'output', 'weight'), LN(1, 'output', 'bias'),
      ...CLASSIFIER]);
    expect(sel.trainableCount).toBe(10 * 32 + 66);
    expect(sel.totalCount).toBe(tiny.totalCount);
    expect(sel.masks.size).toBe(0);
  });

  it('freezeHead leaves the classifier out', () => {
    const sel = selectParameters(tiny, 'layernorm', { freezeHead: true });
    expect(hf(sel)).not.toContain('classifier.weight');
    expect(sel.trainableCount).toBe(320);
    expect(selectParameters(tiny, 'full', { freezeHead: true }).trainableCount).toBe(tiny.totalCount - 66);
  });

  it('layers: single, first, last, lists, ranges, and a list continued after a comma', () => {
    const opts = { freezeHead: true };
    expect(hf(selectParameters(tiny, 'layernorm@1', opts))).toEqual([LN(1, 'attention.output', 'weight'), LN(1, 'attention.output', 'bias'), LN(1, 'output', 'weight'), LN(1, 'output', 'bias')]);
    expect(hf(selectParameters(tiny, 'attention-layernorm@last', opts))).toEqual([LN(1, 'attention.output', 'weight'), LN(1, 'attention.output', 'bias')]);
    expect(hf(selectParameters(tiny, 'output-layernorm@first', opts))).toEqual([LN(0, 'output', 'weight'), LN(0, 'output', 'bias')]);
    expect(selectParameters(deep, 'query@0-5').parameters.map((p) => p.layer)).toEqual([0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5]);
    expect(selectParameters(deep, 'query@0,3').parameters.map((p) => p.layer)).toEqual([0, 0, 3, 3]);
    expect(selectParameters(deep, 'value@20-last').parameters.map((p) => p.layer)).toEqual([20, 20, 21, 21, 22, 22, 23, 23]);
    expect(selectParameters(deep, 'value@first-1,last').parameters.map((p) => p.layer)).toEqual([0, 0, 1, 1, 23, 23]);
    const mixed = selectParameters(deep, 'query@0,3,key');
    expect(mixed.parameters.filter((p) => p.module === 'query').map((p) => p.layer)).toEqual([0, 0, 3, 3]);
    expect(mixed.parameters.filter((p) => p.module === 'key')).toHaveLength(48);
  });

  it('role filters and the bias group (BitFit: LayerNorm betas included)', () => {
    const lnBias = selectParameters(tiny, 'layernorm:bias', { freezeHead: true });
    expect(lnBias.parameters.every((p) => p.role === 'bias' && p.module.endsWith('layernorm'))).toBe(true);
    expect(lnBias.parameters).toHaveLength(5);
    const attnW = selectParameters(deep, 'attention:weight');
    expect(attnW.parameters).toHaveLength(24 * 4);
    expect(new Set(attnW.parameters.map((p) => p.module))).toEqual(new Set(['query', 'key', 'value', 'attention-output']));
    expect(attnW.parameters.every((p) => p.role === 'weight')).toBe(true);
    const bitfit = selectParameters(tiny, 'bias', { freezeHead: true });
    expect(bitfit.parameters).toEqual(tiny.parameters.filter((p) => p.role === 'bias' && p.module !== 'classifier'));
    expect(bitfit.parameters.some((p) => p.hfName === 'bert.embeddings.LayerNorm.bias')).toBe(true);
    expect(selectParameters(tiny, 'ffn@0:weight', { freezeHead: true }).parameters.map((p) => p.module)).toEqual(['intermediate', 'output']);
  });

  it('module names and the remaining groups', () => {
    const only = (spec: string) => selectParameters(tiny, spec, { freezeHead: true }).parameters;
    expect(only('embeddings').map((p) => p.hfName)).toEqual([
      'bert.embeddings.word_embeddings.weight', 'bert.embeddings.position_embeddings.weight', 'bert.embeddings.token_type_embeddings.weight']);
    expect(only('embeddings-layernorm')).toHaveLength(2);
    expect(only('pooler').map((p) => p.hfName)).toEqual(['bert.pooler.dense.weight', 'bert.pooler.dense.bias']);
    expect(only('attention')).toHaveLength(2 * 8);
    expect(only('ffn')).toHaveLength(2 * 4);
    expect(only('intermediate,output').map((p) => p.hfName)).toEqual(only('ffn').map((p) => p.hfName));
    expect(hf(selectParameters(tiny, 'classifier'))).toEqual(CLASSIFIER);
    const full = selectParameters(tiny, 'full');
    expect(full.parameters).toEqual(tiny.parameters);
    expect(full.trainableCount).toBe(tiny.totalCount);
    // Union, in structure order, counted once.
    const u = selectParameters(tiny, 'query@0, layernorm@0, query', { freezeHead: true });
    expect(u.trainableCount).toBe(sum(tiny.parameters.filter((p) => p.module === 'query')) + 4 * 32);
    expect(u.parameters).toEqual(tiny.parameters.filter((p) => p.module === 'query' || (p.layer === 0 && p.module.endsWith('layernorm'))));
  });

  it('parses the grammar into terms', () => {
    expect(parseSpec(' LayerNorm@0,2-3:bias , query:top=5% ,key:random=100')).toEqual([
      { text: 'LayerNorm@0,2-3:bias', target: 'layernorm', layers: [{ from: 0, to: 0 }, { from: 2, to: 3 }], role: 'bias' },
      { text: 'query:top=5%', target: 'query', subset: { kind: 'top', fraction: 0.05 } },
      { text: 'key:random=100', target: 'key', subset: { kind: 'random', count: 100 } },
    ]);
  });
});

describe('selectParameters: errors say what exists', () => {
  const err = (spec: string, opts = {}) => {
    try {
      selectParameters(tiny, spec, opts);
    } catch (e) {
      return (e as Error).message;
    }
    throw new Error(`'${spec}' did not fail`);
  };

  it('unknown names list modules and groups, with a suggestion', () => {
    const m = err('lyernorm');
    expect(m).toBe("unknown module 'lyernorm' (did you mean 'layernorm'?); modules: embeddings, embeddings-layernorm, query, key, value, " +
      'attention-output, attention-layernorm, intermediate, output, output-layernorm, pooler, classifier; groups: layernorm, attention, ffn, bias, full');
    expect(err('layernorm,frobnicate')).toMatch(/^unknown module 'frobnicate'; modules: .*; groups: /);
  });

  it('layers out of range name the model range', () => {
    expect(err('layernorm@12')).toBe("layer 12 out of range in 'layernorm@12': model has layers 0-1");
    expect(err('query@0-2')).toBe("layer 2 out of range in 'query@0-2': model has layers 0-1");
    expect(err('query@1-0')).toMatch(/layer range 1-0 runs backwards/);
  });

  it('empty selections say why and what the model has', () => {
    expect(() => selectParameters(deep, 'pooler')).toThrow(/^--train 'pooler' selects no parameters: this model has no pooler; this model has: embeddings, embeddings-layernorm, query, .*output-layernorm \(layers 0-23\)$/);
    expect(() => selectParameters(deep, 'classifier')).toThrow(/this model has no classifier/);
    expect(err('embeddings@0')).toMatch(/^--train 'embeddings@0' selects no parameters: embeddings is outside the encoder layers/);
    expect(err('classifier', { freezeHead: true })).toMatch(/selects the classifier, but the head is frozen/);
  });

  it('malformed specs', () => {
    expect(err('')).toMatch(/empty selection/);
    expect(err('query,,key')).toMatch(/empty item between commas/);
    expect(err('query@')).toMatch(/expected layers after '@'/);
    expect(err('query@x')).toMatch(/bad layer 'x'/);
    expect(err('query:foo')).toMatch(/unknown filter ':foo'; filters: :weight, :bias, :top=N%/);
    expect(err('query:weight:bias')).toMatch(/both ':weight' and ':bias'/);
    expect(err('query:top=0%')).toMatch(/must be a percentage in \(0, 100\]/);
    expect(err('query:top=abc')).toMatch(/expected a percentage like top=5% or an entry count/);
    expect(err('query:top=5%:random=5%')).toMatch(/only one top=\/random=/);
    expect(err('layernorm:top=1000')).toMatch(/asks for 1,000 entries but the matched tensors have 320/);
    expect(err('bias:weight')).toMatch(/the 'bias' group has no weights/);
  });
});

describe('selectParameters: top= and random= masks', () => {
  const lnParams = tiny.parameters.filter((p) => p.module.endsWith('layernorm'));
  const magnitudes = (p: ParameterInfo) => Array.from(tiny.values!(p), Math.abs);

  it('top=5% picks exactly round(5%) of the entries, the largest magnitudes across all matched tensors', () => {
    const sel = selectParameters(tiny, 'layernorm:top=5%', { freezeHead: true });
    expect(sel.trainableCount).toBe(Math.round(0.05 * 320));
    expect(sel.parameters.every((p) => sel.masks.has(p.name))).toBe(true);
    let minChosen = Infinity;
    let maxOther = -Infinity;
    let chosen = 0;
    for (const p of lnParams) {
      const mask = sel.masks.get(p.name) ?? new Uint8Array(p.size);
      expect(mask.length).toBe(p.size);
      magnitudes(p).forEach((m, i) => {
        if (mask[i]) { chosen++; minChosen = Math.min(minChosen, m); } else maxOther = Math.max(maxOther, m);
      });
    }
    expect(chosen).toBe(16);
    expect(minChosen).toBeGreaterThanOrEqual(maxOther);
    // Global: LayerNorm gammas (~1) beat betas (~0), so no bias is chosen.
    expect(sel.parameters.every((p) => p.role === 'weight')).toBe(true);
  });

  it('top=N takes an entry count and follows the values given', () => {
    const q = tiny.parameters.find((p) => p.hfName === 'bert.encoder.layer.0.attention.self.query.bias')!;
    const ramp = (p: ParameterInfo) => Float32Array.from({ length: p.size }, (_, i) => (p === q ? -i : 0));
    const sel = selectParameters(tiny, 'query@0:bias:top=3', { freezeHead: true, values: ramp });
    expect(sel.trainableCount).toBe(3);
    const m = Array.from(sel.masks.get(q.name)!);
    expect(m.slice(-3)).toEqual([1, 1, 1]);
    expect(m.slice(0, -3).every((x) => x === 0)).toBe(true);
  });

  it('random= has the same count, is reproducible per seed and spreads over the matched tensors', () => {
    const a = selectParameters(tiny, 'layernorm:random=25%', { seed: 7, freezeHead: true });
    const b = selectParameters(tiny, 'layernorm:random=25%', { seed: 7, freezeHead: true });
    const c = selectParameters(tiny, 'layernorm:random=25%', { seed: 8, freezeHead: true });
    expect(a.trainableCount).toBe(80);
    expect(c.trainableCount).toBe(80);
    expect([...a.masks]).toEqual([...b.masks]);
    expect([...a.masks]).not.toEqual([...c.masks]);
    expect(a.masks.size).toBeGreaterThan(5);
    // Not the top entries: betas are chosen too.
    expect(a.parameters.some((p) => p.role === 'bias')).toBe(true);
  });

  it('unions: a whole term wins over a mask, two masks OR', () => {
    const sel = selectParameters(tiny, 'layernorm:top=5%,output-layernorm@0', { freezeHead: true });
    const whole = tiny.parameters.filter((p) => p.module === 'output-layernorm' && p.layer === 0);
    for (const p of whole) expect(sel.masks.has(p.name)).toBe(false);
    const top = selectParameters(tiny, 'layernorm:top=5%', { freezeHead: true });
    const maskedOutsideWhole = [...top.masks].filter(([n]) => !whole.some((p) => p.name === n)).reduce((s, [, m]) => s + m.reduce((x, y) => x + y, 0), 0);
    expect(sel.trainableCount).toBe(64 + maskedOutsideWhole);

    const both = selectParameters(tiny, 'layernorm:top=10,layernorm:random=10', { freezeHead: true, seed: 1 });
    const t = selectParameters(tiny, 'layernorm:top=10', { freezeHead: true });
    const r = selectParameters(tiny, 'layernorm:random=10', { freezeHead: true, seed: 1 });
    let union = 0;
    for (const p of lnParams) {
      const mt = t.masks.get(p.name);
      const mr = r.masks.get(p.name);
      for (let i = 0; i < p.size; i++) union += (mt?.[i] ?? 0) | (mr?.[i] ?? 0);
    }
    expect(both.trainableCount).toBe(union);
    expect(union).toBeGreaterThan(10);
  });

  it('a subset of 100% trains whole tensors, without masks', () => {
    const sel = selectParameters(tiny, 'layernorm:top=100%', { freezeHead: true });
    expect(sel.masks.size).toBe(0);
    expect(sel.trainableCount).toBe(320);
  });
});
