/**
 * The parameters a BERT-family model has (names and shapes in Hugging Face's layout), reading them
 * from checkpoints, and checking a checkpoint against a config.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ModtuneError } from '../errors.js';
import { DataType } from '../onnx/dtype.js';
import type { Model } from '../onnx/graph.js';
import { numel, tensorFloat32 } from '../onnx/tensor.js';
import type { BertConfig } from './config.js';
import { readSafetensors, readSafetensorsIndex } from './safetensors.js';

export interface WeightTensor {
  shape: number[];
  data: Float32Array;
}
export type WeightMap = Map<string, WeightTensor>;

/** How a parameter is initialised and which part of the model owns it. */
export type ParamKind = 'linear' | 'bias' | 'embedding' | 'ln-weight' | 'ln-bias';
export type ParamGroup = 'encoder' | 'pooler' | 'head' | 'mlm';

export interface ParamSpec {
  name: string;
  shape: number[];
  kind: ParamKind;
  group: ParamGroup;
  /** Embedding row that Hugging Face initialises to zero (nn.Embedding padding_idx). */
  paddingIdx?: number;
}

/**
 * Which optional parts a model has. `numLabels` 0 means no head. `mlmHead`: BertForMaskedLM's
 * prediction head (`cls.predictions.*`, decoder tied to the word embeddings), scoring every position
 * ('all') or only the positions named by a `masked_positions` input ('masked', for pre-training).
 */
export interface BertLayout {
  pooler: boolean;
  numLabels: number;
  mlmHead?: MlmHeadMode;
}
export type MlmHeadMode = 'all' | 'masked';

/** Hugging Face's BertForMaskedLM head names (the decoder weight is the word embedding table). */
export const MLM_HEAD = {
  dense: 'cls.predictions.transform.dense',
  layerNorm: 'cls.predictions.transform.LayerNorm',
  bias: 'cls.predictions.bias',
  /** Saved by some Hugging Face versions as copies of tied tensors; never separate parameters. */
  tied: ['cls.predictions.decoder.weight', 'cls.predictions.decoder.bias'],
} as const;

/** `bert`, `roberta` or `electra`: the prefix of every encoder parameter name. */
export function modelPrefix(config: BertConfig): string {
  return config.modelType;
}

/** The width of the embedding tables (ELECTRA may embed narrower than the encoder). */
export function embeddingWidth(config: BertConfig): number {
  return config.embeddingSize ?? config.hiddenSize;
}

/** Every parameter of the model in Hugging Face's order, names and [out, in] Linear layout. */
export function parameterSpecs(config: BertConfig, layout: BertLayout): ParamSpec[] {
  const p = modelPrefix(config);
  const H = config.hiddenSize;
  const E = embeddingWidth(config);
  const specs: ParamSpec[] = [];
  const linear = (name: string, out: number, inp: number, group: ParamGroup = 'encoder') => {
    specs.push({ name: `${name}.weight`, shape: [out, inp], kind: 'linear', group });
    specs.push({ name: `${name}.bias`, shape: [out], kind: 'bias', group });
  };
  const layerNorm = (name: string, width: number, group: ParamGroup = 'encoder') => {
    specs.push({ name: `${name}.weight`, shape: [width], kind: 'ln-weight', group });
    specs.push({ name: `${name}.bias`, shape: [width], kind: 'ln-bias', group });
  };
  const embedding = (name: string, rows: number, paddingIdx?: number) => {
    specs.push({ name: `${name}.weight`, shape: [rows, E], kind: 'embedding', group: 'encoder', ...(paddingIdx !== undefined && { paddingIdx }) });
  };

  embedding(`${p}.embeddings.word_embeddings`, config.vocabSize, config.padTokenId);
  // RoBERTa's position table also has a padding row: positions count from padding_idx + 1.
  embedding(`${p}.embeddings.position_embeddings`, config.maxPositionEmbeddings, config.modelType === 'roberta' ? config.padTokenId : undefined);
  embedding(`${p}.embeddings.token_type_embeddings`, config.typeVocabSize);
  layerNorm(`${p}.embeddings.LayerNorm`, E);
  if (E !== H) linear(`${p}.embeddings_project`, H, E);
  for (let i = 0; i < config.numHiddenLayers; i++) {
    const l = `${p}.encoder.layer.${i}`;
    linear(`${l}.attention.self.query`, H, H);
    linear(`${l}.attention.self.key`, H, H);
    linear(`${l}.attention.self.value`, H, H);
    linear(`${l}.attention.output.dense`, H, H);
    layerNorm(`${l}.attention.output.LayerNorm`, H);
    linear(`${l}.intermediate.dense`, config.intermediateSize, H);
    linear(`${l}.output.dense`, H, config.intermediateSize);
    layerNorm(`${l}.output.LayerNorm`, H);
  }
  if (layout.pooler) linear(`${p}.pooler.dense`, H, H, 'pooler');
  if (layout.numLabels > 0) {
    if (config.modelType === 'bert') {
      linear('classifier', layout.numLabels, H, 'head');
    } else {
      // RobertaClassificationHead / ElectraClassificationHead: dense, activation, out_proj.
      linear('classifier.dense', H, H, 'head');
      linear('classifier.out_proj', layout.numLabels, H, 'head');
    }
  }
  if (layout.mlmHead) {
    if (config.modelType !== 'bert') throw new ModtuneError(`a masked-LM head is built for BERT models only (model_type is '${config.modelType}')`);
    linear(MLM_HEAD.dense, H, H, 'mlm');
    layerNorm(MLM_HEAD.layerNorm, H, 'mlm');
    specs.push({ name: MLM_HEAD.bias, shape: [config.vocabSize], kind: 'bias', group: 'mlm' });
  }
  return specs;
}

/** Number of parameters (scalars) of a model with this config and layout. */
export function parameterCount(config: BertConfig, layout: BertLayout): number {
  return parameterSpecs(config, layout).reduce((s, spec) => s + numel(spec.shape), 0);
}

/** Integer buffers some checkpoints carry next to the parameters; never weights. */
export function isBufferName(name: string): boolean {
  return /(^|\.)embeddings\.(position_ids|token_type_ids)$/.test(name);
}

const PREFIXLESS_ROOTS = ['embeddings.', 'embeddings_project.', 'encoder.', 'pooler.'];

/**
 * Hugging Face names as the builder uses them: the model prefix added to prefix-less names (a
 * checkpoint of the bare `BertModel`), old TensorFlow-era `gamma`/`beta` LayerNorm names renamed,
 * integer buffers dropped.
 */
export function normalizeWeightNames(weights: WeightMap, config: BertConfig, label = 'weights'): WeightMap {
  const prefix = `${modelPrefix(config)}.`;
  const out: WeightMap = new Map();
  for (const [original, t] of weights) {
    if (isBufferName(original) || (MLM_HEAD.tied as readonly string[]).includes(original)) continue;
    let name = original.replace(/\.LayerNorm\.gamma$/, '.LayerNorm.weight').replace(/\.LayerNorm\.beta$/, '.LayerNorm.bias');
    if (PREFIXLESS_ROOTS.some((r) => name.startsWith(r))) name = prefix + name;
    if (out.has(name)) throw new ModtuneError(`${label}: tensor '${original}' and another tensor both map to '${name}'`);
    out.set(name, t);
  }
  return out;
}

/** At most `max` items, then "and N more". */
export function listSome(items: string[], max = 3): string {
  if (items.length <= max) return items.join(', ');
  return `${items.slice(0, max).join(', ')} and ${items.length - max} more`;
}

/**
 * Check (normalised) weights against the parameters the config needs. The encoder must be complete
 * and exactly shaped, with no extra encoder tensors (a sign of a wrong config, e.g. more layers).
 * A pooler or head wholly absent from the checkpoint is returned as `fresh` (initialised new, as
 * Hugging Face does when it adds a task head); a partial or mis-shaped one is an error.
 */
export function checkWeights(config: BertConfig, layout: BertLayout, weights: WeightMap, label = 'weights'): { fresh: ParamSpec[] } {
  const specs = parameterSpecs(config, layout);
  const missing: string[] = [];
  const wrongShape: string[] = [];
  const fresh: ParamSpec[] = [];
  for (const group of ['encoder', 'pooler', 'head', 'mlm'] as const) {
    const members = specs.filter((s) => s.group === group);
    if (group !== 'encoder' && members.length && members.every((s) => !weights.has(s.name))) {
      fresh.push(...members);
      continue;
    }
    for (const s of members) {
      const t = weights.get(s.name);
      if (!t) missing.push(s.name);
      else if (!sameShape(t.shape, s.shape) || t.data.length !== numel(s.shape)) {
        wrongShape.push(`${s.name} [${t.shape.join(', ')}] (expected [${s.shape.join(', ')}])`);
      }
    }
  }
  const p = modelPrefix(config);
  const expected = new Set(specs.map((s) => s.name));
  const encoderRoots = [`${p}.embeddings.`, `${p}.embeddings_project.`, `${p}.encoder.`];
  const unexpected = [...weights.keys()].filter((n) => !expected.has(n) && encoderRoots.some((r) => n.startsWith(r)));
  if (!missing.length && !wrongShape.length && !unexpected.length) return { fresh };

  const parts: string[] = [];
  if (missing.length) parts.push(`missing ${missing.length}: ${listSome(missing)}`);
  if (wrongShape.length) parts.push(`wrong shape ${wrongShape.length}: ${listSome(wrongShape)}`);
  if (unexpected.length) parts.push(`unexpected ${unexpected.length}: ${listSome(unexpected)}`);
  const anyPrefixed = [...weights.keys()].some((n) => n.startsWith(`${p}.`));
  const hint = anyPrefixed ? '' : ` (no tensor is named '${p}.*'; found e.g. '${[...weights.keys()][0] ?? 'nothing'}': is model_type right?)`;
  throw new ModtuneError(`${label}: weights do not match the config: ${parts.join('; ')}${hint}`);
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/**
 * Read a checkpoint: a `.safetensors` file, a `model.safetensors.index.json`, or a folder holding
 * either. Integer buffers (`position_ids`, ...) are skipped.
 */
export function loadWeights(location: string): WeightMap {
  let file = location;
  let stat: fs.Stats;
  try {
    stat = fs.statSync(location);
  } catch {
    throw new ModtuneError(`${location}: weights not found (expected a .safetensors file, a model.safetensors.index.json, or a folder with one)`);
  }
  if (stat.isDirectory()) {
    const candidates = ['model.safetensors', 'model.safetensors.index.json'].map((f) => path.join(location, f));
    const found = candidates.find((c) => fs.existsSync(c));
    if (!found) throw new ModtuneError(`${location}: folder has neither model.safetensors nor model.safetensors.index.json`);
    file = found;
  }
  if (/\.(bin|pt|pth|ckpt|h5)$/.test(file)) {
    throw new ModtuneError(`${file}: only safetensors checkpoints can be read (PyTorch pickles and TensorFlow files are not); convert it to model.safetensors`);
  }
  const opts = { ignore: isBufferName };
  const loaded = file.endsWith('.json') ? readSafetensorsIndex(file, opts) : readSafetensors(file, opts);
  const out: WeightMap = new Map();
  for (const [name, t] of loaded.tensors) out.set(name, { shape: t.shape, data: t.data });
  return out;
}

/** The float initializers of an ONNX model, by name (for exports that keep Hugging Face names). */
export function weightsFromModel(model: Model): WeightMap {
  const out: WeightMap = new Map();
  for (const [name, t] of model.graph.initializers) {
    if (t.dataType !== DataType.FLOAT && t.dataType !== DataType.FLOAT16 && t.dataType !== DataType.BFLOAT16) continue;
    out.set(name, { shape: [...t.dims], data: tensorFloat32(t) });
  }
  return out;
}

/** The number of labels of a classification head found in the weights, if any. */
export function headLabelsInWeights(weights: WeightMap, config: BertConfig): number | undefined {
  const out = config.modelType === 'bert' ? 'classifier.weight' : 'classifier.out_proj.weight';
  const t = weights.get(out);
  return t && t.shape.length === 2 ? t.shape[0] : undefined;
}
