/**
 * `modtune merge`: base model + delta → one inference model with the tuned values baked in, runnable
 * by any ONNX Runtime (inputs input_ids/attention_mask/token_type_ids, output logits).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ModtuneError } from '../errors.js';
import { unshareParameters } from '../modules/index.js';
import type { Model } from '../onnx/graph.js';
import { saveModel } from '../onnx/io.js';
import { BaseModel, checkBase, headedInference, loadBase, matchParameters, tunedValues } from './apply.js';
import { Delta, readDelta } from './delta.js';
import { Fp16Result, storeWeightsAsFloat16 } from './fp16.js';
import { META_BASE_SHA, META_DELTA_SHA, META_TASK, META_TOKENIZER, TaskMeta, TokenizerMeta } from './metadata.js';
import { setHfValues } from './params.js';
import { deltaFiles, externalDataFiles, isModtuneModel } from './outputs.js';
import { checkOutputFile, checkOutputFileNotInput } from '../util/output-guard.js';

export interface MergeOptions {
  /** Accept a base whose sha256 differs from the delta's (shapes must still match). */
  force?: boolean;
  /** Store big weights as float16 (+ Cast), see fp16.ts. */
  fp16?: boolean;
}

/** The merged inference model, in memory. `tokenizerFile`: the name its metadata gives the tokenizer. */
export function mergeDelta(base: BaseModel, delta: Delta, opts: MergeOptions & { tokenizerFile?: string | null } = {}): { model: Model; fp16?: Fp16Result } {
  checkBase(delta, base, opts);
  const m = delta.manifest;
  const headed = headedInference(base, m.task.head, m.task.newHead, m.selection.seed);
  const params = matchParameters(delta, base, headed);
  const model = headed.model;
  // Tuned values first (differences are relative to the base values), then write them.
  const values = new Map([...params].map(([name, p]) => [name, tunedValues(delta, name, model, p)]));
  const infos = [...params.values()].map((p) => ({ ...p }));
  unshareParameters(model, infos);
  for (const p of infos) setHfValues(model, p, values.get(p.hfName)!);
  model.graph.removeDeadNodes();

  const task: TaskMeta = { name: m.task.name, kind: m.task.kind, labels: m.task.labels, head: m.task.head };
  const tokenizer: TokenizerMeta = { file: opts.tokenizerFile ?? null, sha256: m.tokenizer.sha256, lowercase: m.tokenizer.lowercase, maxLength: m.tokenizer.maxLength };
  model.metadata[META_TASK] = JSON.stringify(task);
  model.metadata[META_TOKENIZER] = JSON.stringify(tokenizer);
  model.metadata[META_DELTA_SHA] = delta.sha256;
  model.metadata[META_BASE_SHA] = base.sha256;
  model.producerName = 'modtune';
  const fp16 = opts.fp16 ? storeWeightsAsFloat16(model) : undefined;
  return { model, fp16 };
}

export interface MergeFilesOptions extends MergeOptions {
  base: string;
  delta: string;
  out: string;
}

export interface MergeFilesResult {
  files: string[];
  model: Model;
  delta: Delta;
  base: BaseModel;
  fp16?: Fp16Result;
}

/** Merge files: writes OUT and the delta's tokenizer beside it as `<out name>.<tokenizer file>`. */
export function mergeFiles(opts: MergeFilesOptions): MergeFilesResult {
  const delta = readDelta(opts.delta);
  const out = path.resolve(opts.out);
  const stem = path.basename(out).replace(/\.onnx$/, '');
  const tokenizerFile = delta.manifest.tokenizer.file ? `${stem}.${delta.manifest.tokenizer.file}` : null;
  // Never written over an input (the base, its external data, the delta's files), and an existing
  // file only with --force and only when merge wrote it. Checked before and after loading the
  // base, whose external data files are known only then.
  const guard = {
    force: opts.force, name: 'a model written by modtune merge',
    companions: [`${out}_data`, ...(tokenizerFile ? [path.join(path.dirname(out), tokenizerFile)] : [])],
    recognise: (f: string) => isModtuneModel(f, 'merge'),
  };
  const inputs = [{ path: opts.base, what: 'the base model' }, ...deltaFiles(delta)];
  checkOutputFileNotInput(out, { ...guard, inputs });
  const base = loadBase(opts.base);
  checkOutputFile(out, { ...guard, inputs: [...inputs, ...externalDataFiles(opts.base, base.model)] });
  const { model, fp16 } = mergeDelta(base, delta, { ...opts, tokenizerFile });
  fs.mkdirSync(path.dirname(out), { recursive: true });
  const files = saveModel(model, out, { externalData: 'auto' });
  if (tokenizerFile) {
    const dest = path.join(path.dirname(out), tokenizerFile);
    // Contents only: a read-only source must not leave a read-only copy that the next merge cannot replace.
    fs.writeFileSync(dest, fs.readFileSync(path.join(delta.dir, delta.manifest.tokenizer.file!)));
    files.push(dest);
  }
  return { files, model, delta, base, fp16 };
}
