import { ModtuneError } from '../errors.js';
import { parameterCount } from './weights.js';

export type ModelType = 'bert' | 'roberta' | 'electra';
export type HiddenAct = 'gelu' | 'gelu_new' | 'gelu_pytorch_tanh' | 'relu';

/** The architecture of a BERT-family encoder, as Hugging Face's config.json describes it. */
export interface BertConfig {
  modelType: ModelType;
  vocabSize: number;
  hiddenSize: number;
  numHiddenLayers: number;
  numAttentionHeads: number;
  intermediateSize: number;
  hiddenAct: HiddenAct;
  hiddenDropoutProb: number;
  attentionProbsDropoutProb: number;
  classifierDropout: number | null;
  maxPositionEmbeddings: number;
  typeVocabSize: number;
  layerNormEps: number;
  padTokenId: number;
  /** ELECTRA only, and only when it differs from hiddenSize (then `embeddings_project` maps it up). */
  embeddingSize?: number;
  numLabels?: number;
  id2label?: Record<string, string>;
  problemType?: string;
}

export const MODEL_TYPES: readonly ModelType[] = ['bert', 'roberta', 'electra'];
export const HIDDEN_ACTS: readonly HiddenAct[] = ['gelu', 'gelu_new', 'gelu_pytorch_tanh', 'relu'];
const PROBLEM_TYPES = ['regression', 'single_label_classification', 'multi_label_classification'];

/** Hugging Face's class defaults for fields a config.json may leave out. */
const HF_DEFAULTS: Record<ModelType, { typeVocabSize: number; layerNormEps: number; padTokenId: number }> = {
  bert: { typeVocabSize: 2, layerNormEps: 1e-12, padTokenId: 0 },
  roberta: { typeVocabSize: 2, layerNormEps: 1e-12, padTokenId: 1 },
  electra: { typeVocabSize: 2, layerNormEps: 1e-12, padTokenId: 0 },
};

/** Reads fields of one config object, each error naming the file and the field. */
class FieldReader {
  constructor(private obj: Record<string, unknown>, private file: string) {}

  fail(field: string, expected: string): never {
    const got = this.obj[field];
    throw new ModtuneError(`${this.file}: field '${field}' should be ${expected}, got ${JSON.stringify(got) ?? 'undefined'}`);
  }

  has(field: string): boolean {
    return this.obj[field] !== undefined && this.obj[field] !== null;
  }

  positiveInt(field: string, dflt?: number): number {
    if (!this.has(field)) {
      if (dflt !== undefined) return dflt;
      throw new ModtuneError(`${this.file}: missing field '${field}' (a positive integer)`);
    }
    const v = this.obj[field];
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v <= 0) this.fail(field, 'a positive integer');
    return v;
  }

  nonNegativeInt(field: string, dflt: number): number {
    if (!this.has(field)) return dflt;
    const v = this.obj[field];
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) this.fail(field, 'a non-negative integer');
    return v;
  }

  probability(field: string, dflt: number): number {
    if (!this.has(field)) return dflt;
    const v = this.obj[field];
    if (typeof v !== 'number' || !(v >= 0 && v < 1)) this.fail(field, 'a probability in [0, 1)');
    return v;
  }

  positiveNumber(field: string, dflt: number): number {
    if (!this.has(field)) return dflt;
    const v = this.obj[field];
    if (typeof v !== 'number' || !(v > 0) || !Number.isFinite(v)) this.fail(field, 'a positive number');
    return v;
  }

  oneOf<T extends string>(field: string, allowed: readonly T[], dflt?: T): T {
    if (!this.has(field)) {
      if (dflt !== undefined) return dflt;
      throw new ModtuneError(`${this.file}: missing field '${field}' (one of ${allowed.join(', ')})`);
    }
    const v = this.obj[field];
    if (typeof v !== 'string' || !allowed.includes(v as T)) this.fail(field, `one of ${allowed.join(', ')}`);
    return v as T;
  }

  raw(field: string): unknown {
    return this.obj[field];
  }
}

/**
 * Parse and validate a Hugging Face config.json (BertConfig, RobertaConfig, ElectraConfig). Fields
 * that define the architecture's shape are required; the rest take Hugging Face's defaults.
 */
export function parseHfConfig(json: unknown, file: string): BertConfig {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new ModtuneError(`${file}: expected a JSON object (a Hugging Face config.json)`);
  }
  const r = new FieldReader(json as Record<string, unknown>, file);
  const modelType = r.oneOf('model_type', MODEL_TYPES, 'bert');
  const d = HF_DEFAULTS[modelType];

  const hiddenSize = r.positiveInt('hidden_size');
  const numAttentionHeads = r.positiveInt('num_attention_heads');
  if (hiddenSize % numAttentionHeads !== 0) {
    throw new ModtuneError(`${file}: field 'hidden_size' (${hiddenSize}) must be a multiple of 'num_attention_heads' (${numAttentionHeads})`);
  }
  const vocabSize = r.positiveInt('vocab_size');
  const padTokenId = r.nonNegativeInt('pad_token_id', d.padTokenId);
  if (padTokenId >= vocabSize) r.fail('pad_token_id', `a token id below vocab_size (${vocabSize})`);
  const maxPositionEmbeddings = r.positiveInt('max_position_embeddings');
  if (modelType === 'roberta' && maxPositionEmbeddings <= padTokenId + 1) {
    r.fail('max_position_embeddings', `more than pad_token_id + 1 (${padTokenId + 1}): RoBERTa positions start after the padding id`);
  }

  if (r.has('position_embedding_type') && r.raw('position_embedding_type') !== 'absolute') r.fail('position_embedding_type', `"absolute" (the only kind supported)`);
  if (r.raw('is_decoder') === true) r.fail('is_decoder', 'false (decoder models are not supported)');
  if (r.raw('add_cross_attention') === true) r.fail('add_cross_attention', 'false (cross-attention is not supported)');

  const config: BertConfig = {
    modelType,
    vocabSize,
    hiddenSize,
    numHiddenLayers: r.positiveInt('num_hidden_layers'),
    numAttentionHeads,
    intermediateSize: r.positiveInt('intermediate_size'),
    hiddenAct: r.oneOf('hidden_act', HIDDEN_ACTS, 'gelu'),
    hiddenDropoutProb: r.probability('hidden_dropout_prob', 0.1),
    attentionProbsDropoutProb: r.probability('attention_probs_dropout_prob', 0.1),
    classifierDropout: r.has('classifier_dropout') ? r.probability('classifier_dropout', 0) : null,
    maxPositionEmbeddings,
    typeVocabSize: r.positiveInt('type_vocab_size', d.typeVocabSize),
    layerNormEps: r.positiveNumber('layer_norm_eps', d.layerNormEps),
    padTokenId,
  };

  if (modelType === 'electra') {
    const embeddingSize = r.positiveInt('embedding_size', 128);
    if (embeddingSize !== hiddenSize) config.embeddingSize = embeddingSize;
  } else if (r.has('embedding_size') && r.raw('embedding_size') !== hiddenSize) {
    r.fail('embedding_size', `absent or equal to hidden_size (${hiddenSize}) for model_type '${modelType}'`);
  }

  let id2label: Record<string, string> | undefined;
  if (r.has('id2label')) {
    const v = r.raw('id2label');
    if (typeof v !== 'object' || Array.isArray(v) || v === null) r.fail('id2label', 'an object mapping label ids to names');
    const entries = Object.entries(v as Record<string, unknown>);
    const ids = entries.map(([k]) => Number(k)).sort((a, b) => a - b);
    if (entries.some(([, name]) => typeof name !== 'string') || ids.some((id, i) => id !== i)) {
      r.fail('id2label', 'an object with keys "0".."n-1" and string names');
    }
    id2label = Object.fromEntries(entries.map(([k, name]) => [String(Number(k)), name as string]));
  }
  if (r.has('num_labels')) {
    config.numLabels = r.positiveInt('num_labels');
    if (id2label && Object.keys(id2label).length !== config.numLabels) {
      r.fail('num_labels', `equal to the number of id2label entries (${Object.keys(id2label).length})`);
    }
  } else if (id2label) {
    config.numLabels = Object.keys(id2label).length;
  }
  if (id2label) config.id2label = id2label;
  if (r.has('problem_type')) config.problemType = r.oneOf('problem_type', PROBLEM_TYPES);
  checkSizeBounds(config, json as Record<string, unknown>, file);
  return config;
}

/**
 * Upper bounds on a config's sizes, checked before anything is allocated: a config is untrusted, and
 * `num_hidden_layers: 1e6` must be an error in milliseconds, not an out-of-memory crash minutes later.
 * Each bound is far above any published BERT-family encoder (BERT-large: 24 layers, hidden 1,024;
 * XLM-R XL: 36 layers, hidden 2,560, vocabulary 250,002).
 */
export const CONFIG_BOUNDS = {
  num_hidden_layers: 256,
  hidden_size: 16_384,
  num_attention_heads: 1_024,
  intermediate_size: 65_536,
  vocab_size: 1_048_576,
  max_position_embeddings: 65_536,
  type_vocab_size: 1_024,
  embedding_size: 16_384,
  num_labels: 100_000,
} as const;

/** At most this many parameters (4 GiB of float32): a single ONNX file and V8's memory stay within reach. */
export const MAX_PARAMETERS = 2 ** 30;

function checkSizeBounds(c: BertConfig, json: Record<string, unknown>, file: string): void {
  const values: Record<keyof typeof CONFIG_BOUNDS, number | undefined> = {
    num_hidden_layers: c.numHiddenLayers, hidden_size: c.hiddenSize, num_attention_heads: c.numAttentionHeads,
    intermediate_size: c.intermediateSize, vocab_size: c.vocabSize, max_position_embeddings: c.maxPositionEmbeddings,
    type_vocab_size: c.typeVocabSize, embedding_size: c.embeddingSize, num_labels: c.numLabels,
  };
  for (const [field, max] of Object.entries(CONFIG_BOUNDS) as [keyof typeof CONFIG_BOUNDS, number][]) {
    const v = values[field];
    if (v !== undefined && v > max) {
      throw new ModtuneError(`${file}: field '${field}' is ${JSON.stringify(json[field] ?? v)}, more than modtune supports (at most ${max.toLocaleString('en-US')})`);
    }
  }
  const n = parameterCount(c, { pooler: true, numLabels: c.numLabels ?? 0 });
  if (n > MAX_PARAMETERS) {
    throw new ModtuneError(`${file}: these sizes make a model of ${n.toLocaleString('en-US')} parameters, more than modtune supports (${MAX_PARAMETERS.toLocaleString('en-US')}, 4 GiB of float32)`);
  }
}

const ARCHITECTURE_PREFIX: Record<ModelType, string> = { bert: 'Bert', roberta: 'Roberta', electra: 'Electra' };

/** The config as a Hugging Face config.json object (what `parseHfConfig` reads back unchanged). */
export function toHfConfig(c: BertConfig): Record<string, unknown> {
  const out: Record<string, unknown> = {
    architectures: [`${ARCHITECTURE_PREFIX[c.modelType]}${c.numLabels ? 'ForSequenceClassification' : 'Model'}`],
    model_type: c.modelType,
    vocab_size: c.vocabSize,
    hidden_size: c.hiddenSize,
    num_hidden_layers: c.numHiddenLayers,
    num_attention_heads: c.numAttentionHeads,
    intermediate_size: c.intermediateSize,
    hidden_act: c.hiddenAct,
    hidden_dropout_prob: c.hiddenDropoutProb,
    attention_probs_dropout_prob: c.attentionProbsDropoutProb,
    classifier_dropout: c.classifierDropout,
    max_position_embeddings: c.maxPositionEmbeddings,
    type_vocab_size: c.typeVocabSize,
    layer_norm_eps: c.layerNormEps,
    pad_token_id: c.padTokenId,
    initializer_range: 0.02,
    position_embedding_type: 'absolute',
  };
  if (c.modelType === 'electra') out.embedding_size = c.embeddingSize ?? c.hiddenSize;
  if (c.numLabels !== undefined) out.num_labels = c.numLabels;
  if (c.id2label) {
    out.id2label = c.id2label;
    out.label2id = Object.fromEntries(Object.entries(c.id2label).map(([k, v]) => [v, Number(k)]));
  }
  if (c.problemType !== undefined) out.problem_type = c.problemType;
  return out;
}

/** Hugging Face's default label names. */
export function defaultId2Label(n: number): Record<string, string> {
  return Object.fromEntries(Array.from({ length: n }, (_, i) => [String(i), `LABEL_${i}`]));
}

export { PRESETS, presetConfig, type PresetName } from './presets.js';
