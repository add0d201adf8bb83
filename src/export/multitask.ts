/**
 * `modtune serve-model`: one inference model for several deltas of one base. Every tensor that some
 * delta changes becomes a graph input (Hugging Face name and layout) whose initializer of the same
 * name holds the base value — ONNX's "overridable initializer" (IR version ≥ 4). The frozen weights
 * are stored once; a task is chosen by feeding its delta's tensors.
 *
 * Heads: tasks differ in label count, so the head's output projection is an input of the widest
 * task's size ([maxLabels, width] and [maxLabels]); a task with fewer labels feeds its rows padded
 * with zeros and reads the first numLabels logits (a regression task, the first one). The padded
 * rows cost maxLabels − numLabels dot products per example, nothing next to the encoder. The head's
 * default value is the base model's own head when some task keeps it (padded the same way), else
 * zeros — every other task feeds its own head.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ModtuneError } from '../errors.js';
import { saveModel } from '../onnx/io.js';
import { exposeTrainableParameters } from '../artifacts/expose.js';
import { HeadSpec } from '../heads/index.js';
import { discoverParameters, ParameterInfo, unshareParameters } from '../modules/index.js';
import { DataType } from '../onnx/dtype.js';
import type { Model } from '../onnx/graph.js';
import { makeTensor, numel, tensorFloat32 } from '../onnx/tensor.js';
import { BaseModel, checkBase, headedInference, loadBase } from './apply.js';
import { Delta, deltaName, deltaNumLabels, readDelta, sameShape } from './delta.js';
import { META_BASE_SHA, META_MULTITASK, MultiTaskMeta, readJsonMeta, TaskMeta } from './metadata.js';
import { hfValues } from './params.js';
import { deltaFiles, externalDataFiles, isModtuneModel } from './outputs.js';
import { checkOutputFile, checkOutputFileNotInput } from '../util/output-guard.js';

export interface MultiTaskModel {
  model: Model;
  meta: MultiTaskMeta;
  /** Base values of the switchable tensors (the initializers that a fed input overrides). */
  defaults: Map<string, { shape: number[]; data: Float32Array }>;
}

/** Unique task names: the delta's task, else its folder name. */
export function taskNames(deltas: Delta[]): string[] {
  const names = deltas.map(deltaName);
  const seen = new Map<string, string>();
  return names.map((n, i) => {
    let name = n;
    if (seen.has(name)) {
      const folder = deltas[i]!.dir.replace(/[/\\]+$/, '').split(/[/\\]/).pop() ?? `task${i}`;
      name = `${n}:${folder}`;
      if (seen.has(name)) throw new ModtuneError(`two deltas would both be called '${name}' (${seen.get(name)} and ${deltas[i]!.dir}); give them distinct folder names`);
    }
    seen.set(name, deltas[i]!.dir);
    return name;
  });
}

/** The same delta twice (same tensors, whatever folder it sits in) would serve one task under two names. */
function refuseRepeats(deltas: Delta[]): void {
  const seen = new Map<string, string>();
  for (const d of deltas) {
    const first = seen.get(d.sha256);
    if (first !== undefined) throw new ModtuneError(`${d.dir} is the same delta as ${first} (delta.safetensors sha256 ${d.sha256.slice(0, 12)}…); list each delta once`);
    seen.set(d.sha256, d.dir);
  }
}

export function buildMultiTaskModel(base: BaseModel, deltas: Delta[], opts: { force?: boolean } = {}): MultiTaskModel {
  if (deltas.length === 0) throw new ModtuneError('serve-model: give at least one delta folder with --tasks');
  refuseRepeats(deltas);
  for (const d of deltas) checkBase(d, base, opts);
  const names = taskNames(deltas);
  const maxLabels = Math.max(...deltas.map((d) => deltaNumLabels(d.manifest)));
  const spec: HeadSpec = maxLabels >= 2 ? { kind: 'classification', numLabels: maxLabels } : { kind: 'regression' };

  // The base's own head, when a task keeps it: its values become the head's default.
  const keeper = deltas.find((d) => !d.manifest.task.newHead);
  let ownHead: Map<string, Float32Array> | undefined;
  let ownLabels = 0;
  if (keeper) {
    const k = keeper.manifest;
    const h = headedInference(base, k.task.head, false, k.selection.seed);
    if (!h.reused) throw new ModtuneError(`${keeper.dir}: the delta keeps the base model's own classification head, but ${base.label} has none with ${deltaNumLabels(k)} outputs`);
    ownLabels = deltaNumLabels(k);
    ownHead = new Map(h.structure.parameters.filter((p) => p.module === 'classifier').map((p) => [p.hfName, hfValues(h.model, p)]));
  }
  const headed = headedInference(base, spec, !(keeper && ownLabels === maxLabels), 0);
  const model = headed.model;
  const structure = headed.structure;
  const byHf = new Map(structure.parameters.map((p) => [p.hfName, p]));

  // Switchable: whatever any delta touches, and the whole head.
  const wanted = new Set<string>(structure.parameters.filter((p) => p.module === 'classifier').map((p) => p.hfName));
  deltas.forEach((d, i) => {
    for (const p of d.manifest.parameters) {
      const info = byHf.get(p.name);
      if (!info) throw new ModtuneError(`${d.dir}: parameter '${p.name}' does not exist in ${base.label}`);
      if (!fitsSwitchable(p.shape, info.hfShape, info.module === 'classifier')) {
        throw new ModtuneError(`${d.dir}: parameter '${p.name}' has shape [${p.shape}] in the delta, [${info.hfShape}] in ${base.label}`);
      }
      wanted.add(p.name);
    }
    checkTotals(d, names[i]!, structure.totalCount, structure.parameters, maxLabels);
  });
  const params: ParameterInfo[] = structure.parameters.filter((p) => wanted.has(p.hfName)).map((p) => ({ ...p }));
  unshareParameters(model, params);
  const exposed = exposeTrainableParameters(model, params);
  const defaults = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const e of exposed) {
    let data = e.initial;
    if (e.info.module === 'classifier') {
      const own = ownHead?.get(e.name);
      data = own ? padRows(own, e.shape) : new Float32Array(numel(e.shape));
    }
    model.graph.initializers.set(e.name, makeTensor(e.name, DataType.FLOAT, e.shape, data));
    defaults.set(e.name, { shape: e.shape, data });
  }
  model.graph.removeDeadNodes();
  // Before IR 4 every initializer had to be a graph input and none could be overridden.
  if (model.irVersion < 4) model.irVersion = 4;
  const logits = model.graph.outputs.find((o) => o.name === 'logits');
  if (logits?.shape) logits.shape = [logits.shape[0] ?? 'batch', maxLabels];

  const meta: MultiTaskMeta = {
    version: 1,
    baseSha256: base.sha256,
    maxLabels,
    switchable: exposed.map((e) => ({ name: e.name, shape: e.shape, padded: e.info.module === 'classifier' && e.shape[0] === maxLabels })),
    tasks: deltas.map((d, i) => ({ name: names[i]!, deltaSha256: d.sha256, task: taskMeta(d) })),
  };
  model.metadata[META_MULTITASK] = JSON.stringify(meta);
  model.metadata[META_BASE_SHA] = base.sha256;
  model.producerName = 'modtune';
  return { model, meta, defaults };
}

export function taskMeta(d: Delta): TaskMeta {
  const t = d.manifest.task;
  return { name: t.name, kind: t.kind, labels: t.labels, head: t.head };
}

/** A delta tensor fits a switchable input of `shape`: equal, or (head) fewer rows. */
function fitsSwitchable(delta: readonly number[], shape: readonly number[], padded: boolean): boolean {
  if (sameShape(delta, shape)) return true;
  return padded && delta.length === shape.length && delta[0]! <= shape[0]! && delta.slice(1).every((d, i) => d === shape[i + 1]);
}

/**
 * The delta's base has this base's parameter count, once the head is sized for the delta's labels
 * (the head's output projection is the head parameter with maxLabels rows).
 */
function checkTotals(d: Delta, name: string, total: number, params: ParameterInfo[], maxLabels: number): void {
  const head = params.filter((p) => p.module === 'classifier');
  const headSize = (labels: number) => head.reduce((s, p) => s + (p.hfShape[0] === maxLabels ? (p.size / maxLabels) * labels : p.size), 0);
  const expected = d.manifest.base.totalParameters - headSize(deltaNumLabels(d.manifest));
  if (expected !== total - headSize(maxLabels)) {
    throw new ModtuneError(`${d.dir}: task '${name}' was made for a base with ${expected} parameters without the head; the base has ${total - headSize(maxLabels)}`);
  }
}

/** Copy `data` (fewer rows) into a zero tensor of `shape`, row-major. */
export function padRows(data: Float32Array, shape: readonly number[]): Float32Array {
  const out = new Float32Array(numel(shape));
  if (data.length > out.length) throw new ModtuneError(`cannot fit ${data.length} values into shape [${shape}]`);
  out.set(data);
  return out;
}

/** The multi-task description and switchable defaults of a model written by serve-model. */
export function readMultiTask(model: Model, label: string): MultiTaskModel | undefined {
  const meta = readJsonMeta<MultiTaskMeta>(model, META_MULTITASK, label);
  if (!meta) return undefined;
  if (meta.version !== 1 || !Array.isArray(meta.switchable)) throw new ModtuneError(`${label}: multi-task metadata version ${meta.version} is not one this modtune reads (1)`);
  const defaults = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const s of meta.switchable) {
    const t = model.graph.initializers.get(s.name);
    if (!t || !model.graph.isGraphInput(s.name)) throw new ModtuneError(`${label}: switchable tensor '${s.name}' should be a graph input with an initializer of the same name`);
    if (!sameShape(t.dims, s.shape)) throw new ModtuneError(`${label}: switchable tensor '${s.name}' has shape [${t.dims}], metadata says [${s.shape}]`);
    defaults.set(s.name, { shape: s.shape, data: Float32Array.from(tensorFloat32(t)) });
  }
  return { model, meta, defaults };
}


export interface ServeModelOptions {
  base: string;
  deltas: string[];
  out: string;
  force?: boolean;
}

/** Build the multi-task model of `deltas` over `base` and write it to `out`. */
export function serveModelFiles(opts: ServeModelOptions): { files: string[]; served: MultiTaskModel; deltas: Delta[] } {
  const out = path.resolve(opts.out);
  const deltas = opts.deltas.map(readDelta);
  refuseRepeats(deltas);
  const guard = {
    force: opts.force, name: 'a model written by modtune serve-model', companions: [`${out}_data`],
    recognise: (f: string) => isModtuneModel(f, 'serve-model'),
  };
  const inputs = [{ path: opts.base, what: 'the base model' }, ...deltas.flatMap(deltaFiles)];
  checkOutputFileNotInput(out, { ...guard, inputs });
  const base = loadBase(opts.base);
  checkOutputFile(out, { ...guard, inputs: [...inputs, ...externalDataFiles(opts.base, base.model)] });
  const served = buildMultiTaskModel(base, deltas, { force: opts.force });
  fs.mkdirSync(path.dirname(out), { recursive: true });
  const files = saveModel(served.model, out, { externalData: 'auto' });
  return { files, served, deltas };
}
