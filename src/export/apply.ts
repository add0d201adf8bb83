/**
 * Applying deltas to a base model: is the delta for this base, which graph parameter does each delta
 * tensor land in, and what are the tuned values.
 */
import * as path from 'node:path';
import { ModtuneError } from '../errors.js';
import { attachHead, HeadSpec } from '../heads/index.js';
import { discoverParameters, ModelStructure, ParameterInfo } from '../modules/index.js';
import type { Model } from '../onnx/graph.js';
import { modelSha256 } from '../onnx/hash.js';
import { loadModel } from '../onnx/io.js';
import { checkFiniteWeights } from '../onnx/finite.js';
import { checkNoDanglingInputs } from '../onnx/checks.js';
import { checkMaxLength, maxSequenceLength } from '../modules/positions.js';
import { Delta, sameShape } from './delta.js';
import { hfValues } from './params.js';

export interface BaseModel {
  /** Name used in messages (the file path). */
  label: string;
  model: Model;
  sha256: string;
  structure: ModelStructure;
}

export function loadBase(file: string): BaseModel {
  const model = loadModel(file);
  checkNoDanglingInputs(model, file);
  checkFiniteWeights(model, file);
  const sha256 = modelSha256(file, model.externalDataFiles ?? []);
  return { label: file, model, sha256, structure: discoverParameters(model, { label: file }) };
}

/**
 * Refuse a delta made for another base. The sha256 identifies the exact weights; `force` accepts a
 * different sha (e.g. the same weights re-exported), never a different shape.
 */
export function checkBase(delta: Delta, base: BaseModel, opts: { force?: boolean } = {}): void {
  const want = delta.manifest.base;
  const have = base.structure;
  const label = path.join(delta.dir, 'delta.json');
  const diffs: string[] = [];
  if (want.family !== have.family) diffs.push(`family ${want.family} vs ${have.family}`);
  if (want.numLayers !== have.numLayers) diffs.push(`${want.numLayers} vs ${have.numLayers} layers`);
  if (want.hiddenSize !== have.hiddenSize) diffs.push(`hidden size ${want.hiddenSize} vs ${have.hiddenSize}`);
  if (diffs.length) throw new ModtuneError(`${label}: made for another base shape than ${base.label} (delta vs base: ${diffs.join(', ')})`);
  checkMaxLength(delta.manifest.tokenizer.maxLength, maxSequenceLength(have), `${label}: field 'tokenizer.maxLength'`, base.label);
  if (want.sha256 !== base.sha256 && !opts.force) {
    throw new ModtuneError(
      `${label}: made for base sha256 ${want.sha256.slice(0, 12)}…, but ${base.label} has ${base.sha256.slice(0, 12)}…; ` +
        `pass --force if it holds the same weights`,
    );
  }
}

/**
 * The base's inference model with the delta's task head: the head the delta's training used (the
 * base's own, or a new one whose values the delta carries), without dropout.
 */
export function headedInference(base: BaseModel, head: HeadSpec, newHead: boolean, seed: number): { model: Model; reused: boolean; structure: ModelStructure } {
  const headed = attachHead(base.model, head, { newHead, seed, dropout: 0, label: base.label });
  const model = headed.infer;
  return { model, reused: headed.head.reused, structure: discoverParameters(model, { label: base.label }) };
}

/** The graph parameter of each delta tensor, checked against the delta's shapes and totals. */
export function matchParameters(delta: Delta, base: BaseModel, headed: { reused: boolean; structure: ModelStructure }): Map<string, ParameterInfo> {
  const label = path.join(delta.dir, 'delta.json');
  const m = delta.manifest;
  if (!m.task.newHead && !headed.reused) {
    throw new ModtuneError(`${label}: the delta keeps the base model's own classification head, but ${base.label} has none with ${headLabels(m.task.head)}`);
  }
  if (headed.structure.totalCount !== m.base.totalParameters) {
    throw new ModtuneError(`${label}: made for a base with ${m.base.totalParameters} parameters (with the head), ${base.label} has ${headed.structure.totalCount}`);
  }
  const byHf = new Map(headed.structure.parameters.map((p) => [p.hfName, p]));
  const out = new Map<string, ParameterInfo>();
  for (const d of m.parameters) {
    const p = byHf.get(d.name);
    if (!p) throw new ModtuneError(`${label}: parameter '${d.name}' does not exist in ${base.label}`);
    if (!sameShape(p.hfShape, d.shape)) throw new ModtuneError(`${label}: parameter '${d.name}' has shape [${d.shape}] in the delta, [${p.hfShape}] in ${base.label}`);
    out.set(d.name, p);
  }
  return out;
}

function headLabels(h: HeadSpec): string {
  return h.kind === 'regression' ? '1 output' : `${h.numLabels} labels`;
}

/** The tuned values of a delta tensor (Hugging Face layout): stored values, or base + stored difference. */
export function tunedValues(delta: Delta, name: string, model: Model, p: ParameterInfo): Float32Array {
  const d = delta.manifest.parameters.find((x) => x.name === name)!;
  const stored = delta.tensors.get(name)!.data;
  if (d.stored === 'value') return stored;
  const base = hfValues(model, p);
  for (let i = 0; i < base.length; i++) base[i] = base[i]! + stored[i]!;
  return base;
}
