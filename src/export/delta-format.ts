/**
 * The delta format: `delta.json`'s schema and its validation, without Node I/O, so the browser page
 * checks a dropped delta and writes one with the same code as `modtune merge` (files: ./delta.ts).
 */
import { ModtuneError } from '../errors.js';
import type { HeadSpec } from '../heads/index.js';
import { numel } from '../onnx/tensor.js';

export const DELTA_FORMAT = 'modtune-delta';
export const DELTA_VERSION = 1;
export const DELTA_JSON = 'delta.json';
export const DELTA_TENSORS = 'delta.safetensors';

export interface DeltaParameter {
  /** Hugging Face name (key in delta.safetensors). */
  name: string;
  /** Hugging Face layout. */
  shape: number[];
  module: string;
  layer: number | null;
  role: 'weight' | 'bias';
  /** 'diff': the tensor holds tuned − base; 'value': the tuned values themselves. */
  stored: 'value' | 'diff';
  /** Entries that training could change (less than the size under a top=/random= mask). */
  trainableEntries: number;
  /** Whether training updated it (false: a new head kept frozen, stored so the delta is complete). */
  trained: boolean;
}

export interface DeltaManifest {
  format: typeof DELTA_FORMAT;
  version: number;
  modtuneVersion: string;
  createdAt: string;
  base: { sha256: string; file: string | null; family: string; numLayers: number; hiddenSize: number; totalParameters: number };
  task: {
    name: string | null;
    /** GLUE input kind: one text or a text pair; null when the task is not a GLUE task. */
    kind: 'single' | 'pair' | null;
    labels: string[] | null;
    head: HeadSpec;
    /** True when the head was created for this task (its parameters are in the delta). */
    newHead: boolean;
  };
  selection: { spec: string; trainableCount: number; totalCount: number; freezeHead: boolean; seed: number };
  parameters: DeltaParameter[];
  tokenizer: { file: string | null; sha256: string | null; lowercase: boolean; maxLength: number };
  checkpoint: { name: string; step: number | null; metrics: Record<string, number> | null; main: number | null };
  diff: boolean;
  tensors: { file: typeof DELTA_TENSORS; sha256: string; bytes: number };
}

export function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

export function checkFinite(data: Float32Array, where: string): void {
  for (let i = 0; i < data.length; i++) {
    if (!Number.isFinite(data[i]!)) throw new ModtuneError(`${where}: entry ${i} is ${data[i]}; expected finite numbers`);
  }
}

// ---- validation of delta.json ------------------------------------------------------------------

/** Validate parsed `delta.json` content; `file` names it in errors. */
export function checkDeltaManifest(json: unknown, file: string): DeltaManifest {
  const obj = (v: unknown, field: string): Record<string, unknown> => {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new ModtuneError(`${file}: field '${field}' should be an object`);
    return v as Record<string, unknown>;
  };
  const m = obj(json, '(top level)');
  if (m.format !== DELTA_FORMAT) throw new ModtuneError(`${file}: field 'format' is ${JSON.stringify(m.format)}, expected '${DELTA_FORMAT}'`);
  if (typeof m.version !== 'number' || !Number.isInteger(m.version) || m.version < 1) {
    throw new ModtuneError(`${file}: field 'version' should be a positive integer, got ${JSON.stringify(m.version)}`);
  }
  if (m.version > DELTA_VERSION) {
    throw new ModtuneError(`${file}: delta format version ${m.version} is newer than this modtune reads (${DELTA_VERSION}); upgrade modtune`);
  }
  const str = (o: Record<string, unknown>, k: string, where: string, nullable = false): void => {
    if (!(typeof o[k] === 'string' || (nullable && o[k] === null))) throw new ModtuneError(`${file}: field '${where}.${k}' should be a string${nullable ? ' or null' : ''}`);
  };
  const int = (o: Record<string, unknown>, k: string, where: string): void => {
    if (!Number.isSafeInteger(o[k]) || (o[k] as number) < 0) throw new ModtuneError(`${file}: field '${where}.${k}' should be a non-negative integer`);
  };
  const base = obj(m.base, 'base');
  str(base, 'sha256', 'base');
  str(base, 'family', 'base');
  int(base, 'numLayers', 'base');
  int(base, 'hiddenSize', 'base');
  int(base, 'totalParameters', 'base');
  const task = obj(m.task, 'task');
  str(task, 'name', 'task', true);
  const head = obj(task.head, 'task.head');
  if (head.kind === 'classification') {
    if (!Number.isSafeInteger(head.numLabels) || (head.numLabels as number) < 2) throw new ModtuneError(`${file}: field 'task.head.numLabels' should be an integer ≥ 2`);
    if (task.labels !== null && (!Array.isArray(task.labels) || task.labels.length !== head.numLabels || !task.labels.every((l) => typeof l === 'string'))) {
      throw new ModtuneError(`${file}: field 'task.labels' should list ${head.numLabels} label names`);
    }
  } else if (head.kind !== 'regression') {
    throw new ModtuneError(`${file}: field 'task.head.kind' should be 'classification' or 'regression', got ${JSON.stringify(head.kind)}`);
  }
  if (task.kind !== null && task.kind !== 'single' && task.kind !== 'pair') throw new ModtuneError(`${file}: field 'task.kind' should be 'single', 'pair' or null`);
  if (typeof task.newHead !== 'boolean') throw new ModtuneError(`${file}: field 'task.newHead' should be true or false`);
  const selection = obj(m.selection, 'selection');
  str(selection, 'spec', 'selection');
  int(selection, 'seed', 'selection');
  if (!Array.isArray(m.parameters) || m.parameters.length === 0) throw new ModtuneError(`${file}: field 'parameters' should be a non-empty list`);
  const seen = new Set<string>();
  m.parameters.forEach((raw, i) => {
    const p = obj(raw, `parameters[${i}]`);
    str(p, 'name', `parameters[${i}]`);
    if (seen.has(p.name as string)) throw new ModtuneError(`${file}: parameter '${p.name}' is listed twice`);
    seen.add(p.name as string);
    if (!Array.isArray(p.shape) || !p.shape.every((d) => Number.isSafeInteger(d) && d > 0)) {
      throw new ModtuneError(`${file}: field 'parameters[${i}].shape' should be a list of positive integers`);
    }
    if (p.stored !== 'value' && p.stored !== 'diff') throw new ModtuneError(`${file}: field 'parameters[${i}].stored' should be 'value' or 'diff'`);
    if (numel(p.shape as number[]) === 0) throw new ModtuneError(`${file}: parameter '${p.name}' is empty`);
  });
  const tok = obj(m.tokenizer, 'tokenizer');
  str(tok, 'file', 'tokenizer', true);
  if (typeof tok.file === 'string' && (/[\\/]/.test(tok.file) || tok.file.startsWith('.'))) {
    throw new ModtuneError(`${file}: field 'tokenizer.file' should be a file name inside the delta folder, got ${JSON.stringify(tok.file)}`);
  }
  int(tok, 'maxLength', 'tokenizer');
  if (typeof tok.lowercase !== 'boolean') throw new ModtuneError(`${file}: field 'tokenizer.lowercase' should be true or false`);
  const tensors = obj(m.tensors, 'tensors');
  if (tensors.file !== DELTA_TENSORS) throw new ModtuneError(`${file}: field 'tensors.file' should be '${DELTA_TENSORS}'`);
  str(tensors, 'sha256', 'tensors');
  if (typeof m.diff !== 'boolean') throw new ModtuneError(`${file}: field 'diff' should be true or false`);
  return m as unknown as DeltaManifest;
}

/**
 * The tensors of `delta.safetensors` checked against `delta.json`: each listed parameter present
 * with its shape and finite values, nothing unlisted. `file` names delta.safetensors in errors.
 */
export function checkDeltaTensors(
  manifest: DeltaManifest,
  tensors: Map<string, { shape: number[]; data: Float32Array }>,
  file: string,
): Map<string, { shape: number[]; data: Float32Array }> {
  const out = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const p of manifest.parameters) {
    const t = tensors.get(p.name);
    if (!t) throw new ModtuneError(`${file}: tensor '${p.name}' listed in delta.json is missing`);
    if (!sameShape(t.shape, p.shape)) throw new ModtuneError(`${file}: tensor '${p.name}' has shape [${t.shape}], delta.json says [${p.shape}]`);
    checkFinite(t.data, `${file}: tensor '${p.name}'`);
    out.set(p.name, { shape: t.shape, data: t.data });
  }
  for (const name of tensors.keys()) {
    if (!out.has(name)) throw new ModtuneError(`${file}: tensor '${name}' is not listed in delta.json`);
  }
  return out;
}
