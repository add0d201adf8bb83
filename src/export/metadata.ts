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
