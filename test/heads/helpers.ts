import * as fs from 'node:fs';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { buildBert } from '../../src/bert/build.js';
import { BertConfig, presetConfig } from '../../src/bert/config.js';
import { DataType } from '../../src/onnx/dtype.js';
import { Model } from '../../src/onnx/graph.js';
import { encodeModel } from '../../src/onnx/io.js';
import { tensorNumbers } from '../../src/onnx/tensor.js';
import { TORCH113 } from '../helpers/paths.js';

export const torchExpected = JSON.parse(fs.readFileSync(path.join(TORCH113, 'tiny_bert_torch113.expected.json'), 'utf8')) as {
  input_ids: number[][];
  attention_mask: number[][];
  token_type_ids: number[][];
  expected_logits: number[][];
};

/** A small config of the given family (fast sessions, still every structural piece). */
export function tinyConfig(modelType: BertConfig['modelType'] = 'bert', extra: Partial<BertConfig> = {}): BertConfig {
  return {
    ...presetConfig('bert-tiny'),
    modelType,
    vocabSize: 100,
    hiddenSize: 16,
    numHiddenLayers: 2,
    numAttentionHeads: 2,
    intermediateSize: 32,
    maxPositionEmbeddings: 32,
    padTokenId: modelType === 'roberta' ? 1 : 0,
    ...extra,
  };
}

export function tinyBert(opts: Partial<Parameters<typeof buildBert>[0]> & { config?: BertConfig } = {}): Model {
  return buildBert({ config: tinyConfig(), seed: 3, perturbLayerNorm: true, ...opts });
}

export type Feeds = Record<string, ort.Tensor>;

/**
 * Inputs for a BERT-like model: the torch fixture's own two sequences (batch 2, length 6) padded to
 * the model's sequence length when it is fixed, ids kept below `vocab`.
 */
export function bertFeeds(model: Model, vocab = 20): Feeds {
  const feeds: Feeds = {};
  for (const input of model.graph.inputs) {
    const fixed = input.shape?.[1];
    const seq = typeof fixed === 'number' ? fixed : 6;
    const rows = (k: 'input_ids' | 'attention_mask' | 'token_type_ids') =>
      torchExpected[k].map((r) => Array.from({ length: seq }, (_, i) => r[i] ?? 0));
    let values: number[][];
    if (/mask/.test(input.name)) values = rows('attention_mask');
    else if (/type/.test(input.name)) values = rows('token_type_ids');
    else if (/ids/.test(input.name)) values = rows('input_ids').map((r) => r.map((v) => v % vocab));
    else continue;
    const flat = values.flat();
    feeds[input.name] = input.elemType === DataType.INT32
      ? new ort.Tensor('int32', Int32Array.from(flat), [values.length, seq])
      : new ort.Tensor('int64', BigInt64Array.from(flat.map(BigInt)), [values.length, seq]);
  }
  return feeds;
}

export function classLabels(values: number[]): ort.Tensor {
  return new ort.Tensor('int64', BigInt64Array.from(values.map(BigInt)), [values.length]);
}

export function floatLabels(values: number[]): ort.Tensor {
  return new ort.Tensor('float32', Float32Array.from(values), [values.length]);
}

export async function session(model: Model, options: ort.InferenceSession.SessionOptions = {}): Promise<ort.InferenceSession> {
  return ort.InferenceSession.create(encodeModel(model), { logSeverityLevel: 3, ...options });
}

export interface Outputs {
  loss?: number;
  logits: number[][];
  logitsDims: readonly number[];
  lossDims?: readonly number[];
}

export async function run(s: ort.InferenceSession, feeds: Feeds): Promise<Outputs> {
  const wanted = Object.fromEntries(s.inputNames.map((n) => [n, feeds[n]!]));
  const out = await s.run(wanted);
  const logits = out.logits!;
  const [rows, cols] = [logits.dims[0]!, logits.dims[1]!];
  const data = Array.from(logits.data as Float32Array);
  return {
    loss: out.loss ? (out.loss.data as Float32Array)[0] : undefined,
    lossDims: out.loss?.dims,
    logits: Array.from({ length: rows }, (_, r) => data.slice(r * cols, (r + 1) * cols)),
    logitsDims: logits.dims,
  };
}

/** Mean softmax cross-entropy, computed with a stable log-softmax in float64. */
export function crossEntropy(logits: number[][], labels: number[]): number {
  let sum = 0;
  logits.forEach((row, i) => {
    const m = Math.max(...row);
    const lse = m + Math.log(row.reduce((s, v) => s + Math.exp(v - m), 0));
    sum += lse - row[labels[i]!]!;
  });
  return sum / logits.length;
}

export function meanSquaredError(logits: number[][], labels: number[]): number {
  return logits.reduce((s, row, i) => s + (row[0]! - labels[i]!) ** 2, 0) / logits.length;
}

export function dropoutNodes(model: Model) {
  return model.graph.nodes.filter((n) => n.opType === 'Dropout');
}

/** The ratio and training_mode a Dropout node reads (both initializers in what attachHead writes). */
export function dropoutSettings(model: Model, name: string): { ratio: number; training: number } {
  const n = model.graph.nodes.find((x) => x.name === name)!;
  const init = (v: string | undefined) => model.graph.initializers.get(v ?? '')!;
  return { ratio: tensorNumbers(init(n.inputs[1]))[0]!, training: tensorNumbers(init(n.inputs[2]))[0]! };
}
