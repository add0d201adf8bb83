/**
 * What merge and serve-model read and write, for the output guard: the files of a delta and of a
 * base with external data (never written over), and whether an existing model file is one that
 * the command itself wrote (the only kind --force replaces).
 */
import * as path from 'node:path';
import type { Model } from '../onnx/graph.js';
import { readModelHeader } from '../onnx/model-header.js';
import type { GuardInput } from '../util/output-guard.js';
import { DELTA_JSON, DELTA_TENSORS, type Delta } from './delta.js';
import { META_DELTA_SHA, META_MULTITASK } from './metadata.js';

export function deltaFiles(d: Delta): GuardInput[] {
  const files: GuardInput[] = [
    { path: d.dir, what: `the delta ${d.dir}` },
    { path: path.join(d.dir, DELTA_JSON), what: `the delta's ${DELTA_JSON}` },
    { path: path.join(d.dir, DELTA_TENSORS), what: `the delta's ${DELTA_TENSORS}` },
  ];
  if (d.manifest.tokenizer.file) files.push({ path: path.join(d.dir, d.manifest.tokenizer.file), what: "the delta's tokenizer" });
  return files;
}

export function externalDataFiles(baseFile: string, model: Model): GuardInput[] {
  return (model.externalDataFiles ?? []).map((loc) => ({ path: path.resolve(path.dirname(baseFile), loc), what: "the base model's external data" }));
}

/** A model file written by `modtune merge` (one delta baked in) or `modtune serve-model` (multi-task). */
export function isModtuneModel(file: string, by: 'merge' | 'serve-model'): boolean {
  let h;
  try {
    h = readModelHeader(file);
  } catch {
    return false;
  }
  if (!h || h.producerName !== 'modtune') return false;
  return by === 'merge' ? META_DELTA_SHA in h.metadata && !(META_MULTITASK in h.metadata) : META_MULTITASK in h.metadata;
}
