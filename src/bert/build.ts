/**
 * Build a BERT-family encoder (BERT, RoBERTa, ELECTRA) as an ONNX graph, opset 17, from a config and
 * either a checkpoint or a seeded initialisation. The graph mirrors what torch.onnx makes of Hugging
 * Face's modules in training mode (Linear weights stored [out, in] and read through a Transpose,
 * scoped node names), minus Dropout: the head stage adds dropout where training needs it.
 */
import { ModtuneError } from '../errors.js';
import { DataType } from '../onnx/dtype.js';
import { A, Attr, Dim, Graph, Model } from '../onnx/graph.js';
import { newModel } from '../onnx/io.js';
import { Tensor, makeTensor, numel } from '../onnx/tensor.js';
import { Rng } from '../util/random.js';
import { BertConfig, HiddenAct, defaultId2Label, toHfConfig } from './config.js';
import { BertLayout, MLM_HEAD, MlmHeadMode, ParamSpec, WeightMap, WeightTensor, checkWeights, embeddingWidth, modelPrefix, normalizeWeightNames, parameterSpecs } from './weights.js';

export interface BuildBertOptions {
  config: BertConfig;
  /** Hugging Face-named weights (with or without the model prefix). Absent: initialise. */
  weights?: WeightMap;
  /** Where `weights` came from, for error messages. */
  weightsLabel?: string;
  /** 'bert' (default): normal(0, 0.02) weights, zero biases, LayerNorm 1/0. 'zeros': all zero, LayerNorm weight 1. */
  init?: 'bert' | 'zeros';
  seed?: number;
  /** Add normal(0, 0.02) noise to initialised LayerNorm weights and biases (random models that look trained). */
  perturbLayerNorm?: boolean;
  /** Build the pooler (dense + tanh on the first token). Default: BERT yes; RoBERTa unless a head is built; ELECTRA no. */
  pooler?: boolean;
  /** > 0: a sequence-classification head with this many outputs. */
  numLabels?: number;
  /** A regression head: one output (`problem_type` "regression"). */
  regression?: boolean;
  /**
   * BertForMaskedLM's head: output `logits` [batch, sequence, vocab] ('all'), or [masked, vocab] for the
   * positions of an int64 input `masked_positions` holding flat indices row × sequence + column
   * ('masked': pre-training projects only the masked tokens onto the vocabulary).
   */
  mlmHead?: MlmHeadMode;
}

/** Standard deviation of Hugging Face's BERT initialisation (`initializer_range`). */
const INIT_STD = 0.02;
/** Scale of the LayerNorm noise of `perturbLayerNorm`. */
const LAYERNORM_NOISE_STD = 0.02;
/** torch.finfo(torch.float32).min: what Hugging Face adds to the scores of masked positions. */
const FLOAT32_MIN = -3.4028234663852886e38;

export function buildBert(opts: BuildBertOptions): Model {
  const config = opts.config;
  checkConfig(config);
  const layout = resolveLayout(config, opts);
  const params = resolveParameters(config, layout, opts);
  const b = new BertGraphBuilder(config, params);

  const mask = extendedAttentionMask(b);
  let hidden = embeddings(b);
  for (let i = 0; i < config.numHiddenLayers; i++) {
    const attended = attentionOutput(b, i, selfAttention(b, i, hidden, mask), hidden);
    hidden = feedForward(b, i, attended);
  }
  const pooled = layout.pooler ? pooler(b, hidden) : undefined;

  const g = b.graph;
  const H = config.hiddenSize;
  if (layout.mlmHead) {
    if (layout.numLabels > 0) throw new ModtuneError('a model has either a masked-LM head or a classification head, not both');
    const logits = mlmHead(b, hidden, layout.mlmHead);
    b.nameOutput(logits, 'logits', layout.mlmHead === 'all' ? ['batch', 'sequence', config.vocabSize] : ['masked', config.vocabSize]);
  } else if (layout.numLabels > 0) {
    const logits = config.modelType === 'bert' ? bertClassifier(b, pooled!) : tokenClassificationHead(b, hidden);
    b.nameOutput(logits, 'logits', ['batch', layout.numLabels]);
  } else {
    b.nameOutput(hidden, 'last_hidden_state', ['batch', 'sequence', H]);
    if (pooled) b.nameOutput(pooled, 'pooler_output', ['batch', H]);
  }
  g.removeDeadNodes();

  const model = newModel(g, 17);
  model.metadata['modtune.config'] = JSON.stringify(toHfConfig(configOfBuiltModel(config, layout, !!opts.regression)));
  model.docString = `${config.modelType} encoder, ${config.numHiddenLayers} layers, hidden ${H}` +
    (layout.numLabels ? `, ${opts.regression ? 'regression' : 'classification'} head (${layout.numLabels})` : '');
  return model;
}

/** The config describing what was built: labels and problem type follow the head, if any. */
function configOfBuiltModel(config: BertConfig, layout: BertLayout, regression: boolean): BertConfig {
  const { numLabels: _n, id2label, problemType, ...body } = config;
  if (layout.numLabels === 0) return body;
  const keepLabels = !regression && id2label && Object.keys(id2label).length === layout.numLabels;
  const out: BertConfig = { ...body, numLabels: layout.numLabels, id2label: keepLabels ? id2label : defaultId2Label(layout.numLabels) };
  if (regression) out.problemType = 'regression';
  else if (problemType && problemType !== 'regression') out.problemType = problemType;
  return out;
}

/** Configs made in code skip parseHfConfig's checks; the ones the graph depends on are repeated here. */
function checkConfig(c: BertConfig): void {
  const dims = { vocabSize: c.vocabSize, hiddenSize: c.hiddenSize, numHiddenLayers: c.numHiddenLayers, numAttentionHeads: c.numAttentionHeads,
    intermediateSize: c.intermediateSize, maxPositionEmbeddings: c.maxPositionEmbeddings, typeVocabSize: c.typeVocabSize, embeddingSize: c.embeddingSize ?? 1 };
  for (const [field, v] of Object.entries(dims)) {
    if (!Number.isSafeInteger(v) || v <= 0) throw new ModtuneError(`BERT config: ${field} should be a positive integer, got ${v}`);
  }
  if (c.hiddenSize % c.numAttentionHeads !== 0) throw new ModtuneError(`BERT config: hiddenSize ${c.hiddenSize} is not a multiple of numAttentionHeads ${c.numAttentionHeads}`);
  if (!(c.layerNormEps > 0)) throw new ModtuneError(`BERT config: layerNormEps should be positive, got ${c.layerNormEps}`);
  if (!Number.isSafeInteger(c.padTokenId) || c.padTokenId < 0 || c.padTokenId >= c.vocabSize) throw new ModtuneError(`BERT config: padTokenId ${c.padTokenId} is not a token id below vocabSize ${c.vocabSize}`);
  if (c.embeddingSize !== undefined && c.modelType !== 'electra') throw new ModtuneError(`BERT config: embeddingSize is for ELECTRA only (modelType is '${c.modelType}')`);
}

/** Which optional parts to build, with the defaults of each model type's Hugging Face classes. */
function resolveLayout(config: BertConfig, opts: BuildBertOptions): BertLayout {
  let numLabels = opts.numLabels ?? 0;
  if (!Number.isSafeInteger(numLabels) || numLabels < 0) throw new ModtuneError(`numLabels must be a non-negative integer, got ${opts.numLabels}`);
  if (opts.regression) {
    if (opts.numLabels !== undefined && opts.numLabels !== 1) throw new ModtuneError(`a regression head has 1 output; numLabels ${opts.numLabels} contradicts regression`);
    numLabels = 1;
  }
  const head = numLabels > 0;
  const prefix = modelPrefix(config);
  const hasPoolerWeights = !!opts.weights && [...opts.weights.keys()].some((n) => /^(\w+\.)?pooler\.dense\.weight$/.test(n));
  let pooler: boolean;
  switch (config.modelType) {
    case 'bert':
      // BertForSequenceClassification classifies the pooled output.
      if (head && opts.pooler === false) throw new ModtuneError(`BERT's classification head reads the pooler's output; it cannot be built without the pooler`);
      pooler = opts.pooler ?? (head || !opts.weights || hasPoolerWeights);
      break;
    case 'roberta':
      if (head && opts.pooler === true) throw new ModtuneError(`RoBERTa's classification head reads the first token, not a pooler (Hugging Face builds none); drop the pooler`);
      pooler = opts.pooler ?? (!head && (!opts.weights || hasPoolerWeights));
      break;
    case 'electra':
      if (opts.pooler === true) throw new ModtuneError(`ELECTRA models have no pooler (${prefix}.pooler does not exist in Hugging Face)`);
      pooler = false;
      break;
  }
  return { pooler, numLabels, ...(opts.mlmHead && { mlmHead: opts.mlmHead }) };
}

/** Every parameter's data: from the checkpoint, or freshly initialised in Hugging Face's order. */
function resolveParameters(config: BertConfig, layout: BertLayout, opts: BuildBertOptions): WeightMap {
  const specs = parameterSpecs(config, layout);
  const label = opts.weightsLabel ?? 'weights';
  let given: WeightMap = new Map();
  let fresh: ParamSpec[] = specs;
  if (opts.weights) {
    if (opts.perturbLayerNorm) throw new ModtuneError(`${label}: perturbLayerNorm applies to initialised models only, not to loaded weights`);
    given = normalizeWeightNames(opts.weights, config, label);
    fresh = checkWeights(config, layout, given, label).fresh;
  }
  const rng = new Rng(opts.seed ?? 0);
  const freshNames = new Set(fresh.map((s) => s.name));
  const out: WeightMap = new Map();
  for (const spec of specs) {
    out.set(spec.name, freshNames.has(spec.name) ? initParameter(spec, opts.init ?? 'bert', rng, !!opts.perturbLayerNorm) : given.get(spec.name)!);
  }
  return out;
}

/** Hugging Face's BertPreTrainedModel._init_weights, or zeros for shape-only models. */
function initParameter(spec: ParamSpec, init: 'bert' | 'zeros', rng: Rng, perturbLayerNorm: boolean): WeightTensor {
  if (init !== 'bert' && init !== 'zeros') throw new ModtuneError(`init must be 'bert' or 'zeros', got '${init as string}'`);
  const data = new Float32Array(numel(spec.shape));
  switch (spec.kind) {
    case 'linear':
    case 'embedding':
      if (init === 'bert') rng.fillNormal(data, 0, INIT_STD);
      if (spec.paddingIdx !== undefined) data.fill(0, spec.paddingIdx * spec.shape[1]!, (spec.paddingIdx + 1) * spec.shape[1]!);
      break;
    case 'ln-weight':
      data.fill(1);
      if (perturbLayerNorm) for (let i = 0; i < data.length; i++) data[i]! += rng.normal(0, LAYERNORM_NOISE_STD);
      break;
    case 'ln-bias':
      if (perturbLayerNorm) rng.fillNormal(data, 0, LAYERNORM_NOISE_STD);
      break;
    case 'bias':
      break;
  }
  return { shape: [...spec.shape], data };
}

// ---- graph building blocks ---------------------------------------------------------------------

/**
 * Graph plus the conventions of every node: torch-style scoped names (`/bert/encoder/layer.0/...`,
 * `_1`, `_2` for repeats within a scope), values named `<node>_output_0`, parameters added as
 * initializers on first use.
 */
class BertGraphBuilder {
  readonly graph = new Graph();
  readonly prefix: string;
  private counts = new Map<string, number>();

  constructor(readonly config: BertConfig, private params: WeightMap) {
    this.prefix = modelPrefix(config);
    this.graph.name = config.modelType;
    const ids = (name: string) => ({ name, elemType: DataType.INT64, shape: ['batch', 'sequence'] as Dim[] });
    this.graph.inputs = [ids('input_ids'), ids('attention_mask'), ids('token_type_ids')];
  }

  /** Add a node under `scope`; returns its (single) output value. */
  op(scope: string, opType: string, inputs: string[], attrs: Record<string, Attr> = {}): string {
    const key = `${scope}/${opType}`;
    const n = this.counts.get(key) ?? 0;
    this.counts.set(key, n + 1);
    const name = n === 0 ? key : `${key}_${n}`;
    const node = this.graph.addNode({ opType, inputs, name, outputs: [`${name}_output_0`], attrs });
    return node.outputs[0]!;
  }

  /** A Constant node (torch exports scalars and shapes this way; initializers stay parameters only). */
  constant(scope: string, dataType: DataType, dims: number[], values: number[]): string {
    return this.op(scope, 'Constant', [], { value: A.tensor(makeTensor('', dataType, dims, values)) });
  }

  scalar(scope: string, v: number): string {
    return this.constant(scope, DataType.FLOAT, [], [v]);
  }

  int64s(scope: string, values: number[], dims: number[] = [values.length]): string {
    return this.constant(scope, DataType.INT64, dims, values);
  }

  /** The initializer holding parameter `name` (added on first use). */
  param(name: string): string {
    if (!this.graph.initializers.has(name)) {
      const t = this.params.get(name);
      if (!t) throw new ModtuneError(`internal: parameter '${name}' was not resolved`);
      const tensor: Tensor = makeTensor(name, DataType.FLOAT, t.shape, t.data);
      this.graph.initializers.set(name, tensor);
    }
    return name;
  }

  /** nn.Linear as torch exports it in training mode: Transpose(W) → MatMul → Add(bias). */
  linear(scope: string, x: string, hfName: string): string {
    const wt = this.op(scope, 'Transpose', [this.param(`${hfName}.weight`)], { perm: A.ints([1, 0]) });
    const y = this.op(scope, 'MatMul', [x, wt]);
    return this.op(scope, 'Add', [this.param(`${hfName}.bias`), y]);
  }

  layerNorm(scope: string, x: string, hfName: string): string {
    return this.op(scope, 'LayerNormalization', [x, this.param(`${hfName}.weight`), this.param(`${hfName}.bias`)], {
      axis: A.int(-1),
      epsilon: A.float(this.config.layerNormEps),
    });
  }

  activation(scope: string, x: string, act: HiddenAct): string {
    switch (act) {
      case 'gelu': {
        // x * (1 + erf(x / sqrt 2)) * 0.5, in torch's order.
        const erf = this.op(scope, 'Erf', [this.op(scope, 'Div', [x, this.scalar(scope, Math.SQRT2)])]);
        const onePlus = this.op(scope, 'Add', [erf, this.scalar(scope, 1)]);
        return this.op(scope, 'Mul', [this.op(scope, 'Mul', [x, onePlus]), this.scalar(scope, 0.5)]);
      }
      case 'gelu_new':
      case 'gelu_pytorch_tanh': {
        // 0.5 * x * (1 + tanh(sqrt(2/pi) * (x + 0.044715 * x^3)))
        const cube = this.op(scope, 'Mul', [this.op(scope, 'Mul', [x, x]), x]);
        const inner = this.op(scope, 'Add', [x, this.op(scope, 'Mul', [cube, this.scalar(scope, 0.044715)])]);
        const tanh = this.op(scope, 'Tanh', [this.op(scope, 'Mul', [inner, this.scalar(scope, Math.sqrt(2 / Math.PI))])]);
        const half = this.op(scope, 'Mul', [x, this.scalar(scope, 0.5)]);
        return this.op(scope, 'Mul', [half, this.op(scope, 'Add', [tanh, this.scalar(scope, 1)])]);
      }
      case 'relu':
        return this.op(scope, 'Relu', [x]);
    }
  }

  /** Rename the value `v` to the graph output `name`. */
  nameOutput(v: string, name: string, shape: Dim[]): void {
    const g = this.graph;
    const producer = g.producer(v);
    if (!producer) throw new ModtuneError(`internal: no producer for '${v}'`);
    producer.outputs[producer.outputs.indexOf(v)] = name;
    g.replaceUses(v, name);
    g.outputs.push({ name, elemType: DataType.FLOAT, shape });
  }
}

/** Hugging Face's extended attention mask: (1 - mask[:, None, None, :]) * float32 min, [B, 1, 1, S]. */
function extendedAttentionMask(b: BertGraphBuilder): string {
  const s = `/${b.prefix}`;
  const unsqueezed = b.op(s, 'Unsqueeze', ['attention_mask', b.int64s(s, [1, 2])]);
  const asFloat = b.op(s, 'Cast', [unsqueezed], { to: A.int(DataType.FLOAT) });
  const inverted = b.op(s, 'Sub', [b.scalar(s, 1), asFloat]);
  return b.op(s, 'Mul', [inverted, b.scalar(s, FLOAT32_MIN)]);
}

/** word + token type + position embeddings, LayerNorm; ELECTRA then projects up to the hidden size. */
function embeddings(b: BertGraphBuilder): string {
  const { config, prefix } = b;
  const s = `/${prefix}/embeddings`;
  const p = `${prefix}.embeddings`;
  const words = b.op(`${s}/word_embeddings`, 'Gather', [b.param(`${p}.word_embeddings.weight`), 'input_ids']);
  const types = b.op(`${s}/token_type_embeddings`, 'Gather', [b.param(`${p}.token_type_embeddings.weight`), 'token_type_ids']);
  const sum = b.op(s, 'Add', [words, types]);
  const positions = b.op(`${s}/position_embeddings`, 'Gather', [b.param(`${p}.position_embeddings.weight`), positionIds(b, s)]);
  const normed = b.layerNorm(`${s}/LayerNorm`, b.op(s, 'Add', [sum, positions]), `${p}.LayerNorm`);
  if (embeddingWidth(config) === config.hiddenSize) return normed;
  return b.linear(`/${prefix}/embeddings_project`, normed, `${prefix}.embeddings_project`);
}

/**
 * Position ids. BERT/ELECTRA: 0..S-1 ([S], broadcast over the batch). RoBERTa, as Hugging Face's
 * create_position_ids_from_input_ids: padding tokens get padding_idx, the others count up from
 * padding_idx + 1 ([B, S]).
 */
function positionIds(b: BertGraphBuilder, s: string): string {
  if (b.config.modelType !== 'roberta') {
    const seqLen = b.op(s, 'Gather', [b.op(s, 'Shape', ['input_ids']), b.int64s(s, [1], [])], { axis: A.int(0) });
    return b.op(s, 'Range', [b.int64s(s, [0], []), seqLen, b.int64s(s, [1], [])]);
  }
  const pad = b.config.padTokenId;
  const isToken = b.op(s, 'Not', [b.op(s, 'Equal', ['input_ids', b.int64s(s, [pad], [])])]);
  const mask = b.op(s, 'Cast', [isToken], { to: A.int(DataType.INT64) });
  const counted = b.op(s, 'Mul', [b.op(s, 'CumSum', [mask, b.int64s(s, [1], [])]), mask]);
  return b.op(s, 'Add', [counted, b.int64s(s, [pad], [])]);
}

/** BertSelfAttention: per-head softmax(q kᵀ / sqrt(d) + mask) v, heads merged back to [B, S, H]. */
function selfAttention(b: BertGraphBuilder, layer: number, x: string, mask: string): string {
  const { config, prefix } = b;
  const s = `/${prefix}/encoder/layer.${layer}/attention/self`;
  const p = `${prefix}.encoder.layer.${layer}.attention.self`;
  const heads = config.numAttentionHeads;
  const headSize = config.hiddenSize / heads;
  // [B, S, H] → [B, S, heads, d]; Reshape's 0 copies the batch and sequence dims.
  const split = (v: string) => b.op(s, 'Reshape', [v, b.int64s(s, [0, 0, heads, headSize])]);
  const q = b.op(s, 'Transpose', [split(b.linear(`${s}/query`, x, `${p}.query`))], { perm: A.ints([0, 2, 1, 3]) });
  const kT = b.op(s, 'Transpose', [split(b.linear(`${s}/key`, x, `${p}.key`))], { perm: A.ints([0, 2, 3, 1]) });
  const v = b.op(s, 'Transpose', [split(b.linear(`${s}/value`, x, `${p}.value`))], { perm: A.ints([0, 2, 1, 3]) });
  const scores = b.op(s, 'Div', [b.op(s, 'MatMul', [q, kT]), b.scalar(s, Math.sqrt(headSize))]);
  const probs = b.op(s, 'Softmax', [b.op(s, 'Add', [scores, mask])], { axis: A.int(-1) });
  const context = b.op(s, 'Transpose', [b.op(s, 'MatMul', [probs, v])], { perm: A.ints([0, 2, 1, 3]) });
  return b.op(s, 'Reshape', [context, b.int64s(s, [0, 0, config.hiddenSize])]);
}

/** BertSelfOutput: dense, residual, LayerNorm. */
function attentionOutput(b: BertGraphBuilder, layer: number, context: string, residual: string): string {
  const s = `/${b.prefix}/encoder/layer.${layer}/attention/output`;
  const p = `${b.prefix}.encoder.layer.${layer}.attention.output`;
  const dense = b.linear(`${s}/dense`, context, `${p}.dense`);
  return b.layerNorm(`${s}/LayerNorm`, b.op(s, 'Add', [dense, residual]), `${p}.LayerNorm`);
}

/** BertIntermediate + BertOutput: dense, activation, dense, residual, LayerNorm. */
function feedForward(b: BertGraphBuilder, layer: number, x: string): string {
  const s = `/${b.prefix}/encoder/layer.${layer}`;
  const p = `${b.prefix}.encoder.layer.${layer}`;
  const up = b.linear(`${s}/intermediate/dense`, x, `${p}.intermediate.dense`);
  const act = b.activation(`${s}/intermediate/intermediate_act_fn`, up, b.config.hiddenAct);
  const down = b.linear(`${s}/output/dense`, act, `${p}.output.dense`);
  return b.layerNorm(`${s}/output/LayerNorm`, b.op(`${s}/output`, 'Add', [down, x]), `${p}.output.LayerNorm`);
}

/** The first token's hidden state, [B, S, H] → [B, H]. */
function firstToken(b: BertGraphBuilder, scope: string, hidden: string): string {
  return b.op(scope, 'Gather', [hidden, b.int64s(scope, [0], [])], { axis: A.int(1) });
}

/** BertPooler: tanh(dense(first token)). */
function pooler(b: BertGraphBuilder, hidden: string): string {
  const s = `/${b.prefix}/pooler`;
  const dense = b.linear(`${s}/dense`, firstToken(b, s, hidden), `${b.prefix}.pooler.dense`);
  return b.op(`${s}/activation`, 'Tanh', [dense]);
}

/** BertForSequenceClassification's `classifier`: one Linear on the pooled output. */
function bertClassifier(b: BertGraphBuilder, pooled: string): string {
  return b.linear('/classifier', pooled, 'classifier');
}

/**
 * RobertaClassificationHead / ElectraClassificationHead: first token, dense, activation (tanh for
 * RoBERTa, GELU for ELECTRA), out_proj.
 */
function tokenClassificationHead(b: BertGraphBuilder, hidden: string): string {
  const s = '/classifier';
  const dense = b.linear(`${s}/dense`, firstToken(b, s, hidden), 'classifier.dense');
  const act = b.config.modelType === 'electra' ? b.activation(`${s}/activation`, dense, 'gelu') : b.op(s, 'Tanh', [dense]);
  return b.linear(`${s}/out_proj`, act, 'classifier.out_proj');
}

/**
 * BertLMPredictionHead: dense, activation, LayerNorm, then the tied decoder (the word embedding
 * table, transposed) plus a vocabulary bias. In 'masked' mode the hidden states of the masked
 * positions are gathered first, so the vocabulary projection costs 15% of the tokens, not all.
 */
function mlmHead(b: BertGraphBuilder, hidden: string, mode: MlmHeadMode): string {
  const s = '/cls/predictions';
  const H = b.config.hiddenSize;
  let x = hidden;
  if (mode === 'masked') {
    b.graph.inputs.push({ name: MASKED_POSITIONS, elemType: DataType.INT64, shape: ['masked'] });
    const rows = b.op(s, 'Reshape', [hidden, b.int64s(s, [-1, H])]);
    x = b.op(s, 'Gather', [rows, MASKED_POSITIONS], { axis: A.int(0) });
  }
  const dense = b.linear(`${s}/transform/dense`, x, MLM_HEAD.dense);
  const act = b.activation(`${s}/transform/transform_act_fn`, dense, b.config.hiddenAct);
  const normed = b.layerNorm(`${s}/transform/LayerNorm`, act, MLM_HEAD.layerNorm);
  const decoderT = b.op(`${s}/decoder`, 'Transpose', [b.param(`${b.prefix}.embeddings.word_embeddings.weight`)], { perm: A.ints([1, 0]) });
  const scores = b.op(`${s}/decoder`, 'MatMul', [normed, decoderT]);
  return b.op(`${s}/decoder`, 'Add', [scores, b.param(MLM_HEAD.bias)]);
}

/** The masked-LM head's input in 'masked' mode: flat indices (row × sequence + column) of the predicted tokens. */
export const MASKED_POSITIONS = 'masked_positions';

/** Parameters (float scalars in initializers) of a model. */
export function countParameters(model: Model): number {
  let n = 0;
  for (const t of model.graph.initializers.values()) if (t.dataType === DataType.FLOAT) n += numel(t.dims);
  return n;
}

