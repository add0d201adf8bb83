/**
 * `modtune export`: turn one checkpoint of a training run into a delta folder — the tuned values of
 * exactly the trained parameters (plus a new head), and the facts needed to apply them to the base.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ModtuneError } from '../errors.js';
import { readSafetensors, writeSafetensors } from '../bert/safetensors.js';
import type { Manifest } from '../artifacts/manifest.js';
import { getGlueTask } from '../data/glue-tasks.js';
import { attachHead } from '../heads/index.js';
import { discoverParameters } from '../modules/index.js';
import { modelSha256, sha256File } from '../onnx/hash.js';
import { numel } from '../onnx/tensor.js';
import { loadModel, writeAtomic } from '../onnx/io.js';
import { VERSION } from '../version.js';
import { checkFinite, DELTA_FORMAT, DELTA_JSON, DELTA_TENSORS, DELTA_VERSION, DeltaManifest, DeltaParameter, sameShape } from './delta.js';
import { hfValues } from './params.js';
import { readRun, resolveCheckpoint, RunCheckpoint } from './run.js';
import { sweepDeadTemps } from '../util/folder-lock.js';
import { checkOutputFolder, jsonHas, type FolderKind } from '../util/output-guard.js';

/** A delta folder as `--force` may replace it: one with a modtune delta.json. */
export const DELTA_FOLDER: FolderKind = {
  name: 'a delta folder',
  marker: DELTA_JSON,
  recognise: (text) => jsonHas(text, { format: (v) => v === DELTA_FORMAT }),
};

export interface ExportOptions {
  run: string;
  /** best (default), last, or a step number. */
  checkpoint?: string;
  out: string;
  /** Store tuned − base instead of tuned values. */
  diff?: boolean;
  /** Replace an existing delta folder. */
  force?: boolean;
}

export interface ExportResult {
  dir: string;
  manifest: DeltaManifest;
  checkpoint: RunCheckpoint;
  /** Size of delta.safetensors. */
  bytes: number;
  files: string[];
}

export function exportDelta(opts: ExportOptions): ExportResult {
  const run = readRun(opts.run);
  const ckpt = resolveCheckpoint(run, opts.checkpoint ?? 'best');
  const m = run.manifest;
  const out = path.resolve(opts.out);
  checkOutputFolder(out, DELTA_FOLDER, {
    force: opts.force,
    inputs: [{ path: run.dir, what: 'the run' }, { path: run.artifactsDir, what: "the run's artifacts" }],
  });
  sweepDeadTemps(path.dirname(out), (n) => n.startsWith(`${path.basename(out)}.tmp-`));

  const initial = readSafetensors(path.join(run.artifactsDir, m.initialValues)).tensors;
  const masks = m.masks ? readSafetensors(path.join(run.artifactsDir, m.masks)).tensors : new Map();
  const tuned = readSafetensors(ckpt.paramsFile).tensors;
  const listed = new Set(m.parameters.map((p) => p.name));
  for (const name of tuned.keys()) {
    if (!listed.has(name)) throw new ModtuneError(`${ckpt.paramsFile}: tensor '${name}' is not a trainable parameter of ${run.artifactsDir}; the checkpoint belongs to other artifacts`);
  }

  const tensors = new Map<string, { shape: number[]; data: Float32Array }>();
  const parameters: DeltaParameter[] = [];
  for (const p of m.parameters) {
    const t = tuned.get(p.name);
    if (!t) throw new ModtuneError(`${ckpt.paramsFile}: trainable parameter '${p.name}' is missing`);
    // Checkpoints may store tensors flat: the element order is the Hugging Face layout's either way.
    const flat = t.shape.length === 1 && t.shape[0] === numel(p.shape);
    if (!sameShape(t.shape, p.shape) && !flat) throw new ModtuneError(`${ckpt.paramsFile}: '${p.name}' has shape [${t.shape}], the artifacts say [${p.shape}]`);
    checkFinite(t.data, `${ckpt.paramsFile}: '${p.name}'`);
    const base = initial.get(p.name);
    if (!base || !sameShape(base.shape, p.shape)) throw new ModtuneError(`${path.join(run.artifactsDir, m.initialValues)}: initial value of '${p.name}' missing or of another shape`);
    if (p.mask) {
      const mask = masks.get(p.mask);
      if (!mask || mask.data.length !== t.data.length) throw new ModtuneError(`${path.join(run.artifactsDir, m.masks ?? 'masks.safetensors')}: mask '${p.mask}' missing or of another shape`);
      checkMaskedUnchanged(p.name, t.data, base.data, mask.data, ckpt.paramsFile);
    }
    // A new head starts from a random draw: a difference to it means nothing on its own, so it is
    // always stored as values.
    const isNewHead = p.module === 'classifier' && !m.task.headReused;
    const stored = opts.diff && !isNewHead ? 'diff' : 'value';
    tensors.set(p.name, { shape: p.shape, data: stored === 'diff' ? subtract(t.data, base.data) : Float32Array.from(t.data) });
    parameters.push({ name: p.name, shape: p.shape, module: p.module, layer: p.layer, role: p.role, stored, trainableEntries: p.trainableEntries, trained: true });
  }
  if (!m.task.headReused && !parameters.some((p) => p.module === 'classifier')) {
    // A new head that stayed frozen: the merge needs its (random) values all the same.
    for (const h of frozenNewHead(m, run.artifactsDir)) {
      tensors.set(h.name, { shape: h.shape, data: h.data });
      parameters.push({ name: h.name, shape: h.shape, module: 'classifier', layer: null, role: h.role, stored: 'value', trainableEntries: 0, trained: false });
    }
  }

  const tmp = `${out}.tmp-${process.pid}`;
  fs.rmSync(tmp, { recursive: true, force: true });
  fs.mkdirSync(tmp, { recursive: true });
  const tensorFile = path.join(tmp, DELTA_TENSORS);
  writeSafetensors(tensorFile, tensors, { format: 'pt', 'modtune.format': DELTA_FORMAT, 'modtune.diff': String(!!opts.diff) });
  const files = [DELTA_TENSORS];
  let tokenizerFile: string | null = null;
  let tokenizerSha: string | null = null;
  if (m.tokenizer.file) {
    const src = path.join(run.artifactsDir, m.tokenizer.file);
    if (!fs.existsSync(src)) throw new ModtuneError(`${src}: tokenizer named in the artifacts manifest is missing`);
    tokenizerFile = path.basename(m.tokenizer.file);
    fs.writeFileSync(path.join(tmp, tokenizerFile), fs.readFileSync(src)); // contents only, not a read-only mode
    tokenizerSha = sha256File(src);
    files.push(tokenizerFile);
  }
  const taskName = m.task.name;
  const manifest: DeltaManifest = {
    format: DELTA_FORMAT,
    version: DELTA_VERSION,
    modtuneVersion: VERSION,
    createdAt: new Date().toISOString(),
    base: { sha256: m.base.sha256, file: m.base.file ?? null, family: m.base.family, numLayers: m.base.numLayers, hiddenSize: m.base.hiddenSize, totalParameters: m.base.totalParameters },
    task: { name: taskName, kind: taskName ? glueKind(taskName) : null, labels: m.task.labels, head: m.task.head, newHead: !m.task.headReused },
    selection: { spec: m.selection.spec, trainableCount: m.selection.trainableCount, totalCount: m.selection.totalCount, freezeHead: m.selection.freezeHead, seed: m.selection.seed },
    parameters,
    tokenizer: { file: tokenizerFile, sha256: tokenizerSha, lowercase: m.tokenizer.lowercase, maxLength: m.tokenizer.maxLength },
    checkpoint: { name: ckpt.name, step: ckpt.step, metrics: ckpt.metrics, main: ckpt.main },
    diff: !!opts.diff,
    tensors: { file: DELTA_TENSORS, sha256: sha256File(tensorFile), bytes: fs.statSync(tensorFile).size },
  };
  writeAtomic(path.join(tmp, DELTA_JSON), JSON.stringify(manifest, null, 2) + '\n');
  files.push(DELTA_JSON);
  fs.rmSync(out, { recursive: true, force: true });
  fs.renameSync(tmp, out);
  return { dir: out, manifest, checkpoint: ckpt, bytes: manifest.tensors.bytes, files: files.map((f) => path.join(out, f)) };
}

function glueKind(name: string): 'single' | 'pair' | null {
  try {
    return getGlueTask(name).kind;
  } catch {
    return null;
  }
}

function subtract(a: Float32Array, b: Float32Array): Float32Array {
  const out = new Float32Array(a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i]! - b[i]!;
  return out;
}

/**
 * The optimizer never moves an entry whose mask is 0 (not even by weight decay), so a checkpoint in
 * which one moved was not produced by these artifacts' training step: refuse it.
 */
function checkMaskedUnchanged(name: string, tuned: Float32Array, base: Float32Array, mask: Float32Array, file: string): void {
  for (let i = 0; i < tuned.length; i++) {
    if (mask[i] === 0 && tuned[i] !== base[i]) {
      throw new ModtuneError(`${file}: '${name}' entry ${i} is frozen by its mask but moved (${base[i]} → ${tuned[i]}); the checkpoint is corrupt or from other artifacts`);
    }
  }
}

/** The initial values of a new head that did not train, from the artifacts' inference model or the base. */
function frozenNewHead(m: Manifest, artifactsDir: string): { name: string; shape: number[]; role: 'weight' | 'bias'; data: Float32Array }[] {
  let model;
  if (m.native) {
    model = loadModel(path.join(artifactsDir, m.native.infer.file));
  } else {
    const file = m.base.file;
    if (!file || !fs.existsSync(file)) throw new ModtuneError(`${artifactsDir}: the new head is frozen and its values are needed, but neither native/infer.onnx nor the base model (${file}) is there`);
    const base = loadModel(file);
    const sha = modelSha256(file, base.externalDataFiles ?? []);
    if (sha !== m.base.sha256) throw new ModtuneError(`${file}: sha256 differs from the one the artifacts were made from; cannot rebuild the frozen new head`);
    model = attachHead(base, m.task.head, { newHead: true, seed: m.selection.seed, dropout: 0 }).infer;
  }
  const head = discoverParameters(model).parameters.filter((p) => p.module === 'classifier');
  if (head.length === 0) throw new ModtuneError(`${artifactsDir}: no classification head found in the inference model`);
  return head.map((p) => ({ name: p.hfName, shape: p.hfShape, role: p.role, data: hfValues(model, p) }));
}
