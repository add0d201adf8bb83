/**
 * Predictions from a merged model, or from a base (or serve-model multi-task) model plus deltas.
 * Load once, predict many; with several deltas, `useTask` switches by swapping the tensors fed to
 * the same session — no session is re-created.
 *
 * The JavaScript bindings of ONNX Runtime (node 1.30, web 1.19) list only the inputs without an
 * initializer and cannot feed an overridable initializer (node ignores the feed, web refuses it),
 * so the predictor turns the multi-task model's switchable tensors into plain inputs when it loads
 * the model, keeps their base values in memory and feeds a complete set on every run.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ModtuneError } from '../errors.js';
import { BertTokenizer, loadTokenizer } from '../data/tokenizer.js';
import { BaseModel } from '../export/apply.js';
import { Delta, deltaNumLabels, readDelta, sameShape } from '../export/delta.js';
import { META_TASK, META_TOKENIZER, readTaskMeta, readTokenizerMeta, TaskMeta, TokenizerMeta } from '../export/metadata.js';
import { buildMultiTaskModel, MultiTaskModel, readMultiTask, taskMeta, taskNames } from '../export/multitask.js';
import { discoverParameters } from '../modules/index.js';
import { checkMaxLength, maxSequenceLength } from '../modules/positions.js';
import type { Model } from '../onnx/graph.js';
import { modelSha256, sha256File } from '../onnx/hash.js';
import { decodeModel, encodeModel } from '../onnx/io.js';
import { checkFiniteWeights } from '../onnx/finite.js';
import { numel } from '../onnx/tensor.js';
import { resolveInside } from '../util/inside.js';
import { tokenizerBeside } from '../data/paths.js';
import { readHfExport } from './hf-export.js';
import { interpretLogits } from './interpret.js';
import { loadRuntime, Runtime, RuntimeName, RuntimeSession, RuntimeTensor } from './runtime.js';

export interface PredictorOptions {
  /** A merged model (`modtune merge`), a multi-task model (`modtune serve-model`), or the base model the deltas were made for. */
  base: string;
  /** Delta folders (`modtune export`); required unless `base` is a merged model. */
  deltas?: string[];
  runtime?: RuntimeName;
  /** Tokenizer file (tokenizer.json or vocab.txt) to use instead of the one the model/delta names. */
  tokenizer?: string;
  /** Accept deltas whose base sha256 differs from the base's (shapes must still match). */
  force?: boolean;
  /** Examples per inference run (default 32). */
  batchSize?: number;
  numThreads?: number;
}

/** One text, or a text pair. */
export type PredictInput = string | [string, string] | { text: string; textPair?: string };

export interface Prediction {
  task: string;
  /** Predicted class name (classification), null for regression. */
  label: string | null;
  index: number | null;
  /** Softmax over the task's labels (classification), null for regression. */
  probabilities: number[] | null;
  /** The regression output, null for classification. */
  score: number | null;
  logits: number[];
}

export interface EncodedInput {
  inputIds: number[];
  tokenTypeIds: number[];
}

interface TaskState {
  name: string;
  task: TaskMeta;
  numLabels: number;
  labels: string[] | null;
  tokenizer: BertTokenizer;
  maxLength: number;
  /** The switchable tensors to feed (empty for a merged model). */
  feeds: Record<string, RuntimeTensor>;
}

export class Predictor {
  private current: TaskState;
  private constructor(
    private readonly runtime: Runtime,
    private readonly session: RuntimeSession,
    private readonly states: Map<string, TaskState>,
    private readonly batchSize: number,
  ) {
    this.current = states.values().next().value!;
  }

  static async load(opts: PredictorOptions): Promise<Predictor> {
    const batchSize = opts.batchSize ?? 32;
    if (!Number.isInteger(batchSize) || batchSize < 1) throw new ModtuneError(`batch size must be a positive integer, got ${batchSize}`);
    const runtime = await loadRuntime(opts.runtime ?? 'node', { numThreads: opts.numThreads });
    let bytes: Uint8Array;
    try {
      bytes = fs.readFileSync(opts.base);
    } catch (e) {
      throw new ModtuneError(`${opts.base}: cannot read model file (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
    }
    const model = decodeModel(bytes, { baseDir: path.dirname(path.resolve(opts.base)), label: opts.base });
    checkFiniteWeights(model, opts.base);
    const tokenizers = new TokenizerCache(opts.tokenizer);
    const multi = readMultiTask(model, opts.base);
    const merged = readTaskMeta(model, opts.base, multi ? undefined : logitsWidth(model));
    const deltaDirs = opts.deltas ?? [];

    if (deltaDirs.length === 0) {
      if (multi) throw new ModtuneError(`${opts.base}: a multi-task model; give the delta folders of the tasks to serve`);
      if (!merged) {
        // A plain Hugging Face export: labels from the config.json beside it.
        const hf = readHfExport(opts.base, logitsWidth(model));
        if (!hf) throw new ModtuneError(`${opts.base}: not a merged model (no ${META_TASK} metadata) and no config.json beside it naming its labels; give the delta folder(s) to apply to this base model`);
        const tokenizer = tokenizers.beside(opts.base);
        const name = hf.task.name ?? path.basename(opts.base);
        const state: TaskState = { name, task: hf.task, numLabels: headLabels(hf.task), labels: hf.task.labels, tokenizer, maxLength: hf.maxLength, feeds: {} };
        const runBytes = model.externalDataFiles?.length ? encodeModel(model) : fs.readFileSync(opts.base);
        return new Predictor(runtime, await runtime.createSession(runBytes), new Map([[name, state]]), batchSize);
      }
      const tok = readTokenizerMeta(model, opts.base);
      if (tok) checkMaxLength(tok.maxLength, maxSequenceLength(discoverParameters(model, { label: opts.base })), `metadata '${META_TOKENIZER}' field 'maxLength'`, opts.base);
      const tokenizer = tokenizers.forModel(opts.base, tok);
      const name = merged.name ?? path.basename(opts.base).replace(/\.onnx$/, '');
      const state: TaskState = { name, task: merged, numLabels: headLabels(merged), labels: merged.labels, tokenizer, maxLength: tok?.maxLength ?? 512, feeds: {} };
      // decodeModel re-aligns tensor bytes in place, so the session gets the file afresh.
      const runBytes = model.externalDataFiles?.length ? encodeModel(model) : fs.readFileSync(opts.base);
      const session = await runtime.createSession(runBytes);
      return new Predictor(runtime, session, new Map([[name, state]]), batchSize);
    }

    if (merged && !multi) throw new ModtuneError(`${opts.base}: a merged model (task ${merged.name ?? 'unnamed'}); deltas apply to the base model or a serve-model multi-task model`);
    const deltas = deltaDirs.map(readDelta);
    let served: MultiTaskModel;
    if (multi) {
      for (const d of deltas) checkServable(multi, d, opts);
      served = multi;
    } else {
      const base: BaseModel = { label: opts.base, model, sha256: modelSha256(opts.base, model.externalDataFiles ?? []), structure: discoverParameters(model, { label: opts.base }) };
      served = buildMultiTaskModel(base, deltas, { force: opts.force });
    }
    const session = await runtime.createSession(encodeModel(withSwitchableInputs(served.model, served)));
    const defaults = new Map([...served.defaults].map(([name, t]) => [name, runtime.float32(t.data, t.shape)]));
    const names = taskNames(deltas);
    const states = new Map<string, TaskState>();
    deltas.forEach((d, i) => {
      const m = d.manifest;
      const tokenizer = tokenizers.forDelta(d);
      states.set(names[i]!, {
        name: names[i]!, task: taskMeta(d), numLabels: deltaNumLabels(m), labels: m.task.labels, tokenizer, maxLength: m.tokenizer.maxLength,
        feeds: taskFeeds(d, served, defaults, runtime),
      });
    });
    return new Predictor(runtime, session, states, batchSize);
  }

  /** Task names, in the order the deltas were given. */
  get tasks(): string[] {
    return [...this.states.keys()];
  }

  /** The task predictions are for. */
  get task(): string {
    return this.current.name;
  }

  get labels(): string[] | null {
    return this.current.labels;
  }

  get taskInfo(): TaskMeta {
    return this.current.task;
  }

  get runtimeName(): RuntimeName {
    return this.runtime.name;
  }

  /** Switch task: only the tensors fed from now on change. */
  useTask(name: string): void {
    const s = this.states.get(name);
    if (!s) throw new ModtuneError(`no task '${name}' loaded; tasks: ${this.tasks.join(', ')}`);
    this.current = s;
  }

  /** Tokenize like the task's training did (its tokenizer and maximum length). */
  encode(inputs: PredictInput[]): EncodedInput[] {
    const s = this.current;
    return inputs.map((input, i) => {
      const { text, pair } = normalizeInput(input, i);
      if (pair !== undefined && s.task.kind === 'single') {
        throw new ModtuneError(`task ${s.name} takes one text, but input ${i + 1} is a text pair; drop the second text`);
      }
      if (pair === undefined && s.task.kind === 'pair') {
        throw new ModtuneError(`task ${s.name} takes a text pair, but input ${i + 1} has one text; give the second text too`);
      }
      return s.tokenizer.encode(text, pair, s.maxLength);
    });
  }

  async predict(inputs: PredictInput[]): Promise<Prediction[]> {
    const encoded = this.encode(inputs);
    const out: Prediction[] = [];
    for (let i = 0; i < encoded.length; i += this.batchSize) {
      const rows = await this.logits(encoded.slice(i, i + this.batchSize));
      for (const r of rows) out.push(this.interpret(r));
    }
    return out;
  }

  /** Raw logits ([numLabels] per input) of already tokenized inputs, in one run. */
  async logits(batch: EncodedInput[]): Promise<number[][]> {
    if (batch.length === 0) return [];
    const seq = Math.max(...batch.map((b) => b.inputIds.length));
    const n = batch.length;
    const ids = new BigInt64Array(n * seq);
    const mask = new BigInt64Array(n * seq);
    const types = new BigInt64Array(n * seq);
    const pad = BigInt(this.current.tokenizer.padId);
    batch.forEach((b, r) => {
      for (let j = 0; j < seq; j++) {
        const k = r * seq + j;
        if (j < b.inputIds.length) {
          ids[k] = BigInt(b.inputIds[j]!);
          mask[k] = 1n;
          types[k] = BigInt(b.tokenTypeIds[j]!);
        } else {
          ids[k] = pad;
        }
      }
    });
    const feeds: Record<string, RuntimeTensor> = { ...this.current.feeds };
    const given: Record<string, BigInt64Array> = { input_ids: ids, attention_mask: mask, token_type_ids: types };
    for (const name of this.session.inputNames) {
      if (given[name]) feeds[name] = this.runtime.int64(given[name]!, [n, seq]);
    }
    const result = await this.session.run(feeds);
    const logits = result.logits;
    if (!logits) throw new ModtuneError(`the model has no 'logits' output (outputs: ${this.session.outputNames.join(', ')})`);
    const data = logits.data as Float32Array;
    const width = logits.dims[logits.dims.length - 1]!;
    const k = this.current.numLabels;
    if (logits.dims.length !== 2 || logits.dims[0] !== n || width < k) {
      throw new ModtuneError(`task ${this.current.name} has ${k} output${k === 1 ? '' : 's'}, but the model's logits are [${logits.dims.join(', ')}] for ${n} input${n === 1 ? '' : 's'}`);
    }
    return Array.from({ length: n }, (_, r) => Array.from(data.subarray(r * width, r * width + k)));
  }

  private interpret(logits: number[]): Prediction {
    const s = this.current;
    return { task: s.name, ...interpretLogits(logits, s.task.head.kind === 'regression', s.labels), logits };
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}

function normalizeInput(input: PredictInput, i: number): { text: string; pair?: string } {
  if (typeof input === 'string') return { text: input };
  if (Array.isArray(input)) {
    if (input.length !== 2 || typeof input[0] !== 'string' || typeof input[1] !== 'string') throw new ModtuneError(`input ${i + 1}: expected a text or a pair of texts`);
    return { text: input[0], pair: input[1] };
  }
  if (input && typeof input.text === 'string') return { text: input.text, pair: input.textPair };
  throw new ModtuneError(`input ${i + 1}: expected a text, a [text, pair] array or { text, textPair }`);
}

/** The last dimension of the model's `logits` output, when it is a number. */
function logitsWidth(model: Model): number | undefined {
  const out = model.graph.outputs.find((o) => o.name === 'logits');
  const last = out?.shape?.[out.shape.length - 1];
  return typeof last === 'number' && last > 0 ? last : undefined;
}

function headLabels(t: TaskMeta): number {
  return t.head.kind === 'regression' ? 1 : t.head.numLabels;
}

/** A copy of the multi-task model whose switchable tensors are plain graph inputs (no initializer). */
function withSwitchableInputs(model: Model, served: MultiTaskModel): Model {
  const graph = model.graph.clone();
  for (const s of served.meta.switchable) graph.initializers.delete(s.name);
  return { ...model, graph };
}

/** A delta fits a multi-task model: same base, its tensors among the switchable ones, few enough labels. */
function checkServable(multi: MultiTaskModel, d: Delta, opts: { force?: boolean }): void {
  const label = path.join(d.dir, 'delta.json');
  if (d.manifest.base.sha256 !== multi.meta.baseSha256 && !opts.force) {
    throw new ModtuneError(`${label}: made for base sha256 ${d.manifest.base.sha256.slice(0, 12)}…, but the multi-task model serves ${multi.meta.baseSha256.slice(0, 12)}…; pass --force if it holds the same weights`);
  }
  const n = deltaNumLabels(d.manifest);
  if (n > multi.meta.maxLabels) throw new ModtuneError(`${label}: the task has ${n} labels, the multi-task model's head at most ${multi.meta.maxLabels}; rebuild it with serve-model including this delta`);
  const switchable = new Map(multi.meta.switchable.map((s) => [s.name, s]));
  for (const p of d.manifest.parameters) {
    const s = switchable.get(p.name);
    if (!s) throw new ModtuneError(`${label}: parameter '${p.name}' is not switchable in the multi-task model; rebuild it with serve-model including this delta`);
    const fits = sameShape(p.shape, s.shape) || (s.padded && p.shape.length === s.shape.length && p.shape.slice(1).every((x, i) => x === s.shape[i + 1]));
    if (!fits) throw new ModtuneError(`${label}: parameter '${p.name}' has shape [${p.shape}], the multi-task model's input [${s.shape}]`);
  }
}

/** Every switchable tensor's value for this task: the delta's (padded head rows), else the base's. */
function taskFeeds(d: Delta, served: MultiTaskModel, defaults: Map<string, RuntimeTensor>, runtime: Runtime): Record<string, RuntimeTensor> {
  const feeds: Record<string, RuntimeTensor> = {};
  const params = new Map(d.manifest.parameters.map((p) => [p.name, p]));
  for (const s of served.meta.switchable) {
    const p = params.get(s.name);
    if (!p) {
      feeds[s.name] = defaults.get(s.name)!;
      continue;
    }
    const stored = d.tensors.get(s.name)!.data;
    const full = new Float32Array(numel(s.shape));
    if (p.stored === 'value') {
      full.set(stored);
    } else {
      const base = served.defaults.get(s.name)!.data;
      for (let i = 0; i < stored.length; i++) full[i] = base[i]! + stored[i]!;
    }
    feeds[s.name] = runtime.float32(full, s.shape);
  }
  return feeds;
}

/** Tokenizers by file, loaded once; an explicit file overrides what models and deltas name. */
class TokenizerCache {
  private loaded = new Map<string, BertTokenizer>();
  constructor(private override?: string) {}

  private load(file: string, lowercase?: boolean): BertTokenizer {
    const key = `${path.resolve(file)}|${lowercase}`;
    let t = this.loaded.get(key);
    if (!t) this.loaded.set(key, (t = loadTokenizer(file, lowercase === undefined ? {} : { lowercase })));
    return t;
  }

  forDelta(d: Delta): BertTokenizer {
    const tok = d.manifest.tokenizer;
    if (this.override) return this.load(this.override, tok.lowercase);
    if (!tok.file) throw new ModtuneError(`${d.dir}: the delta has no tokenizer; pass one with --tokenizer`);
    return this.load(resolveInside(d.dir, tok.file, { source: `${path.join(d.dir, 'delta.json')}: field 'tokenizer.file'` }), tok.lowercase);
  }

  /** The tokenizer in a model's folder (a Hugging Face export's layout); its own settings decide lower-casing. */
  beside(modelFile: string): BertTokenizer {
    if (this.override) return this.load(this.override);
    const file = tokenizerBeside(modelFile);
    if (!file) throw new ModtuneError(`${modelFile}: no tokenizer beside it (looked for <model>.tokenizer.json, <model>.vocab.txt, tokenizer.json, vocab.txt); pass one with --tokenizer`);
    return this.load(file);
  }

  forModel(modelFile: string, tok: TokenizerMeta | undefined): BertTokenizer {
    if (this.override) return this.load(this.override, tok?.lowercase);
    if (!tok?.file) throw new ModtuneError(`${modelFile}: the model names no tokenizer; pass one with --tokenizer`);
    const file = resolveInside(path.dirname(path.resolve(modelFile)), tok.file, { source: `${modelFile}: metadata '${META_TOKENIZER}' field 'file'`, optional: true });
    if (!fs.existsSync(file)) throw new ModtuneError(`${file}: tokenizer named by ${modelFile} not found beside it; pass one with --tokenizer`);
    if (tok.sha256 && sha256File(file) !== tok.sha256) throw new ModtuneError(`${file}: not the tokenizer ${modelFile} was tuned with (sha256 differs)`);
    return this.load(file, tok.lowercase);
  }
}

