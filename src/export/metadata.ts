/**
 * metadata_props of the models that merge and serve-model write: what a predictor needs to turn
 * logits into labels and text into input ids, and which delta and base they came from.
 */
import { ModtuneError } from '../errors.js';
import type { HeadSpec } from '../heads/index.js';
import type { Model } from '../onnx/graph.js';

export const META_TASK = 'modtune.task';
export const META_TOKENIZER = 'modtune.tokenizer';
export const META_DELTA_SHA = 'modtune.delta.sha256';
export const META_BASE_SHA = 'modtune.base.sha256';
export const META_MULTITASK = 'modtune.multitask';

export interface TaskMeta {
  name: string | null;
  kind: 'single' | 'pair' | null;
  labels: string[] | null;
  head: HeadSpec;
}

export interface TokenizerMeta {
  /** File name beside the model (null: none recorded; the user passes one). */
  file: string | null;
  sha256: string | null;
  lowercase: boolean;
  maxLength: number;
}

export interface MultiTaskMeta {
  version: 1;
  baseSha256: string;
  /** Rows of the head's output projection (the widest task's label count). */
  maxLabels: number;
  /** The switchable tensors: graph inputs (Hugging Face names and layout) whose initializers hold the base values. */
  switchable: { name: string; shape: number[]; padded: boolean }[];
  tasks: { name: string; deltaSha256: string; task: TaskMeta }[];
}

export function readJsonMeta<T>(model: Model, key: string, label: string): T | undefined {
  const raw = model.metadata[key];
  if (raw === undefined) return undefined;
  try {
    return JSON.parse(raw) as T;
  } catch {
    throw new ModtuneError(`${label}: metadata '${key}' is not valid JSON`);
  }
}

/**
 * A model's `modtune.task` metadata, checked: the labels and numbers a predictor trusts to read the
 * logits. `logitsWidth` (the model's logits' last dimension, when static) must match the head.
 */
export function readTaskMeta(model: Model, label: string, logitsWidth?: number): TaskMeta | undefined {
  const t = readJsonMeta<TaskMeta>(model, META_TASK, label);
  if (t === undefined) return undefined;
  const where = `${label}: metadata '${META_TASK}'`;
  if (typeof t !== 'object' || t === null) throw new ModtuneError(`${where} should be a JSON object`);
  if (t.name !== null && typeof t.name !== 'string') throw new ModtuneError(`${where}: field 'name' should be a string or null`);
  if (t.kind !== null && t.kind !== 'single' && t.kind !== 'pair') throw new ModtuneError(`${where}: field 'kind' should be 'single', 'pair' or null`);
  const head = t.head as { kind?: unknown; numLabels?: unknown } | null;
  if (typeof head !== 'object' || head === null) throw new ModtuneError(`${where}: field 'head' should be an object`);
  let outputs: number;
  if (head.kind === 'classification') {
    if (!Number.isSafeInteger(head.numLabels) || (head.numLabels as number) < 2) throw new ModtuneError(`${where}: field 'head.numLabels' should be an integer ≥ 2, got ${JSON.stringify(head.numLabels)}`);
    outputs = head.numLabels as number;
    if (t.labels !== null && (!Array.isArray(t.labels) || t.labels.length !== outputs || !t.labels.every((l) => typeof l === 'string'))) {
      throw new ModtuneError(`${where}: field 'labels' should list ${outputs} label names (head.numLabels), got ${JSON.stringify(t.labels)}`);
    }
  } else if (head.kind === 'regression') {
    outputs = 1;
  } else {
    throw new ModtuneError(`${where}: field 'head.kind' should be 'classification' or 'regression', got ${JSON.stringify(head.kind)}`);
  }
  if (logitsWidth !== undefined && logitsWidth !== outputs) {
    throw new ModtuneError(`${where}: the head has ${outputs} output${outputs === 1 ? '' : 's'}, but the model's logits have ${logitsWidth}`);
  }
  return t;
}

/** A model's `modtune.tokenizer` metadata, checked (its file is resolved by the reader, inside the model's folder). */
export function readTokenizerMeta(model: Model, label: string): TokenizerMeta | undefined {
  const t = readJsonMeta<TokenizerMeta>(model, META_TOKENIZER, label);
  if (t === undefined) return undefined;
  const where = `${label}: metadata '${META_TOKENIZER}'`;
  if (typeof t !== 'object' || t === null) throw new ModtuneError(`${where} should be a JSON object`);
  if (t.file !== null && typeof t.file !== 'string') throw new ModtuneError(`${where}: field 'file' should be a file name or null`);
  if (t.sha256 !== null && (typeof t.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(t.sha256))) throw new ModtuneError(`${where}: field 'sha256' should be a hex sha256 or null`);
  if (typeof t.lowercase !== 'boolean') throw new ModtuneError(`${where}: field 'lowercase' should be true or false`);
  if (!Number.isSafeInteger(t.maxLength) || t.maxLength < 2) throw new ModtuneError(`${where}: field 'maxLength' should be an integer ≥ 2, got ${JSON.stringify(t.maxLength)}`);
  return t;
}
