import { describe, expect, it } from 'vitest';
import { PRESETS, parseHfConfig, presetConfig, toHfConfig } from '../../src/bert/config.js';
import { buildBert, countParameters } from '../../src/bert/build.js';
import { parameterCount } from '../../src/bert/weights.js';

const base = {
  model_type: 'bert', vocab_size: 30522, hidden_size: 768, num_hidden_layers: 12, num_attention_heads: 12,
  intermediate_size: 3072, max_position_embeddings: 512,
};

describe('Hugging Face config parsing', () => {
  it('reads bert-base-uncased\'s config.json, filling Hugging Face defaults', () => {
    const c = parseHfConfig({ ...base, architectures: ['BertForMaskedLM'], hidden_act: 'gelu', hidden_dropout_prob: 0.1, type_vocab_size: 2, gradient_checkpointing: false, transformers_version: '4.6.0.dev0' }, 'config.json');
    expect(c).toEqual({ ...PRESETS['bert-base'] });
    expect(c.numLabels).toBeUndefined();
  });

  it('reads RoBERTa and ELECTRA configs with their own defaults', () => {
    const r = parseHfConfig({ ...base, model_type: 'roberta', vocab_size: 50265, max_position_embeddings: 514, type_vocab_size: 1, layer_norm_eps: 1e-5 }, 'roberta.json');
    expect(r).toMatchObject({ modelType: 'roberta', padTokenId: 1, typeVocabSize: 1, layerNormEps: 1e-5 });
    const e = parseHfConfig({ ...base, model_type: 'electra', hidden_size: 256, num_attention_heads: 4, intermediate_size: 1024, embedding_size: 128 }, 'electra.json');
    expect(e).toMatchObject({ modelType: 'electra', hiddenSize: 256, embeddingSize: 128 });
    const same = parseHfConfig({ ...base, model_type: 'electra', embedding_size: 768 }, 'electra.json');
    expect(same.embeddingSize).toBeUndefined();
  });

  it('takes labels from num_labels or id2label, and the problem type', () => {
    expect(parseHfConfig({ ...base, id2label: { 0: 'neg', 1: 'pos' } }, 'c').numLabels).toBe(2);
    expect(parseHfConfig({ ...base, num_labels: 1, problem_type: 'regression' }, 'c')).toMatchObject({ numLabels: 1, problemType: 'regression' });
  });

  const bad: Array<[string, unknown, RegExp]> = [
    ['not an object', [1], /cfg\.json: expected a JSON object/],
    ['missing hidden_size', { ...base, hidden_size: undefined }, /cfg\.json: missing field 'hidden_size' \(a positive integer\)/],
    ['string layers', { ...base, num_hidden_layers: '12' }, /cfg\.json: field 'num_hidden_layers' should be a positive integer, got "12"/],
    ['zero heads', { ...base, num_attention_heads: 0 }, /field 'num_attention_heads' should be a positive integer, got 0/],
    ['heads do not divide hidden', { ...base, num_attention_heads: 10 }, /field 'hidden_size' \(768\) must be a multiple of 'num_attention_heads' \(10\)/],
    ['unknown model type', { ...base, model_type: 'distilbert' }, /field 'model_type' should be one of bert, roberta, electra, got "distilbert"/],
    ['unknown activation', { ...base, hidden_act: 'swish' }, /field 'hidden_act' should be one of gelu, gelu_new, gelu_pytorch_tanh, relu, got "swish"/],
    ['dropout out of range', { ...base, hidden_dropout_prob: 1.5 }, /field 'hidden_dropout_prob' should be a probability in \[0, 1\)/],
    ['negative eps', { ...base, layer_norm_eps: -1 }, /field 'layer_norm_eps' should be a positive number/],
    ['pad id outside vocab', { ...base, pad_token_id: 30522 }, /field 'pad_token_id' should be a token id below vocab_size \(30522\)/],
    ['relative positions', { ...base, position_embedding_type: 'relative_key' }, /field 'position_embedding_type' should be "absolute"/],
    ['decoder', { ...base, is_decoder: true }, /field 'is_decoder' should be false/],
    ['labels disagree', { ...base, num_labels: 3, id2label: { 0: 'a', 1: 'b' } }, /field 'num_labels' should be equal to the number of id2label entries \(2\)/],
    ['id2label gaps', { ...base, id2label: { 0: 'a', 2: 'b' } }, /field 'id2label' should be an object with keys "0".."n-1"/],
    ['bad problem type', { ...base, problem_type: 'ranking' }, /field 'problem_type' should be one of regression/],
    ['embedding_size on bert', { ...base, embedding_size: 128 }, /field 'embedding_size' should be absent or equal to hidden_size \(768\) for model_type 'bert'/],
    ['a million layers', { ...base, num_hidden_layers: 1e6 }, /field 'num_hidden_layers' is 1000000, more than modtune supports \(at most 256\)/],
    ['a huge vocabulary', { ...base, vocab_size: 1e9 }, /field 'vocab_size' is 1000000000, more than modtune supports/],
    ['sizes whose product is too big', { ...base, vocab_size: 1_000_000, hidden_size: 4096, num_attention_heads: 32 }, /cfg\.json: these sizes make a model of [\d,]+ parameters, more than modtune supports/],
    ['roberta positions too few', { ...base, model_type: 'roberta', max_position_embeddings: 2 }, /field 'max_position_embeddings' should be more than pad_token_id \+ 1/],
  ];
  for (const [what, json, message] of bad) {
    it(`refuses ${what} with a one-line error naming file and field`, () => {
      expect(() => parseHfConfig(json, 'cfg.json')).toThrow(message);
    });
  }

  it('round-trips through toHfConfig', () => {
    const configs = [
      { ...PRESETS['bert-mini'] },
      parseHfConfig({ ...base, model_type: 'electra', hidden_size: 256, num_attention_heads: 4, embedding_size: 128, hidden_act: 'gelu_new', classifier_dropout: 0.2, num_labels: 3 }, 'e'),
      parseHfConfig({ ...base, model_type: 'roberta', max_position_embeddings: 514, id2label: { 0: 'x' }, problem_type: 'regression', hidden_act: 'relu' }, 'r'),
    ];
    for (const c of configs) expect(parseHfConfig(JSON.parse(JSON.stringify(toHfConfig(c))), 'rt')).toEqual(c);
  });
});

describe('presets', () => {
  const shapes: Record<string, [number, number, number]> = {
    'bert-tiny': [2, 128, 2], 'bert-mini': [4, 256, 4], 'bert-small': [4, 512, 8],
    'bert-medium': [8, 512, 8], 'bert-base': [12, 768, 12], 'bert-large': [24, 1024, 16],
  };
  it('have the published sizes', () => {
    expect(Object.keys(PRESETS).sort()).toEqual(Object.keys(shapes).sort());
    for (const [name, [layers, hidden, heads]] of Object.entries(shapes)) {
      expect(presetConfig(name)).toMatchObject({ numHiddenLayers: layers, hiddenSize: hidden, numAttentionHeads: heads, intermediateSize: 4 * hidden, vocabSize: 30522, maxPositionEmbeddings: 512, typeVocabSize: 2 });
    }
  });

  it('bert-base with pooler and no head has 109,482,240 parameters (counted in the built graph)', () => {
    const model = buildBert({ config: presetConfig('bert-base'), init: 'zeros' });
    expect(countParameters(model)).toBe(109_482_240);
    expect(parameterCount(presetConfig('bert-base'), { pooler: true, numLabels: 0 })).toBe(109_482_240);
    expect(model.graph.outputs.map((o) => o.name)).toEqual(['last_hidden_state', 'pooler_output']);
  });

  it('bert-tiny counts: 4,385,920 with pooler; +258 with a 2-label head; -16,512 without pooler', () => {
    const tiny = presetConfig('bert-tiny');
    expect(countParameters(buildBert({ config: tiny, init: 'zeros' }))).toBe(4_385_920);
    expect(countParameters(buildBert({ config: tiny, init: 'zeros', numLabels: 2 }))).toBe(4_385_920 + 2 * 128 + 2);
    expect(countParameters(buildBert({ config: tiny, init: 'zeros', pooler: false }))).toBe(4_385_920 - 128 * 128 - 128);
  });

  it('presetConfig returns a copy and names the presets on error', () => {
    const c = presetConfig('bert-mini');
    c.hiddenSize = 1;
    expect(PRESETS['bert-mini'].hiddenSize).toBe(256);
    expect(() => presetConfig('bert-huge')).toThrow(/unknown preset 'bert-huge'; expected one of bert-tiny, bert-mini, bert-small, bert-medium, bert-base, bert-large/);
    expect(() => presetConfig('toString')).toThrow(/unknown preset/);
  });
});
