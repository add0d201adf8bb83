/**
 * The prediction worker: one inference session of the served multi-task model; each task is the
 * set of switchable tensors it feeds (its delta's, else the base's), so switching task changes
 * only the feeds. Tasks come from the server, from dropped delta files and from on-device training.
 */
import { parseSafetensors } from '../../bert/safetensors-format.js';
import { BertWordPiece } from '../../data/bert-wordpiece.js';
import type { TokenizerJson } from '../../data/tokenizer-json.js';
import { interpretLogits } from '../../predict/interpret.js';
import type { SiteManifest, SiteTokenizer } from '../site-manifest.js';
import { readDeltaFiles, type DroppedFile, type LoadedDelta } from './deltas.js';
import { heapProblem } from './heap.js';
import { loadOrt, requestThreads, threadCount, WASM_OOM, type Ort, type OrtInferenceSession, type OrtTensor } from './ort.js';
import { messageOf, serveCalls } from './rpc.js';
import { packRows } from './pack.js';

interface Task {
  name: string;
  kind: 'single' | 'pair' | null;
  labels: string[] | null;
  regression: boolean;
  numLabels: number;
  maxLength: number;
  tokenizer: BertWordPiece;
  feeds: Record<string, OrtTensor>;
  source: 'server' | 'dropped' | 'trained';
}

export interface TaskInfo {
  name: string;
  kind: 'single' | 'pair' | null;
  labels: string[] | null;
  regression: boolean;
  source: Task['source'];
}

export interface PredictResult {
  task: string;
  label?: string;
  probabilities?: Record<string, number>;
  score?: number;
  logits: number[];
  /** session.run of this input alone, and tokenization included. */
  runMs: number;
  totalMs: number;
}

let ort: Ort;
let site: SiteManifest;
let siteUrl: string;
let session: OrtInferenceSession;
let defaults: Map<string, OrtTensor>;
const tasks = new Map<string, Task>();
const tokenizers = new Map<string, Promise<BertWordPiece>>();
let current: Task | undefined;

async function fetchBytes(rel: string): Promise<Uint8Array> {
  const url = new URL(rel, siteUrl);
  const r = await fetch(url);
  if (!r.ok) throw new Error(`${url.pathname}: HTTP ${r.status}`);
  return new Uint8Array(await r.arrayBuffer());
}

function siteTokenizer(t: SiteTokenizer): Promise<BertWordPiece> {
  let p = tokenizers.get(t.json);
  if (!p) {
    p = fetchBytes(t.json).then((b) => new BertWordPiece(JSON.parse(new TextDecoder().decode(b)) as TokenizerJson, t.file));
    tokenizers.set(t.json, p);
  }
  return p;
}

function info(t: Task): TaskInfo {
  return { name: t.name, kind: t.kind, labels: t.labels, regression: t.regression, source: t.source };
}

/** Every switchable tensor this task feeds: its delta's value (head rows zero-padded), else the base's. */
function taskFeeds(d: LoadedDelta): Record<string, OrtTensor> {
  const feeds: Record<string, OrtTensor> = {};
  const params = new Map(d.manifest.parameters.map((p) => [p.name, p]));
  for (const s of site.switchable.tensors) {
    const p = params.get(s.name);
    if (!p) {
      feeds[s.name] = defaults.get(s.name)!;
      continue;
    }
    const stored = d.tensors.get(s.name)!.data;
    const full = new Float32Array(s.shape.reduce((a, b) => a * b, 1));
    if (p.stored === 'value') full.set(stored);
    else {
      const base = defaults.get(s.name)!.data as Float32Array;
      for (let i = 0; i < stored.length; i++) full[i] = base[i]! + stored[i]!;
    }
    feeds[s.name] = new ort.Tensor('float32', full, s.shape);
  }
  return feeds;
}

function uniqueName(name: string): string {
  if (!tasks.has(name)) return name;
  for (let i = 2; ; i++) if (!tasks.has(`${name} (${i})`)) return `${name} (${i})`;
}

async function addTask(d: LoadedDelta, tokenizer: BertWordPiece, source: Task['source'], name?: string): Promise<TaskInfo> {
  const m = d.manifest;
  const regression = m.task.head.kind === 'regression';
  const task: Task = {
    name: uniqueName(name ?? m.task.name ?? 'task'), kind: m.task.kind, labels: m.task.labels, regression,
    numLabels: regression ? 1 : (m.task.head as { numLabels: number }).numLabels, maxLength: m.tokenizer.maxLength, tokenizer, feeds: taskFeeds(d), source,
  };
  tasks.set(task.name, task);
  current ??= task;
  return info(task);
}

/** The tokenizer for a dropped or trained delta: its own file, else a served one with the same sha256. */
async function tokenizerFor(d: LoadedDelta): Promise<BertWordPiece> {
  if (d.tokenizer) return new BertWordPiece(d.tokenizer, d.manifest.tokenizer.file ?? 'tokenizer');
  const sha = d.manifest.tokenizer.sha256;
  const served = [site.tokenizer, ...site.tasks.map((t) => t.tokenizer)].find((t) => t.sha256 === sha && t.lowercase === d.manifest.tokenizer.lowercase);
  if (served) return siteTokenizer(served);
  throw new Error(`delta.json: names tokenizer '${d.manifest.tokenizer.file}', which this page does not have; drop that file together with the delta`);
}

function encode(task: Task, text: string, textPair?: string): { ids: number[]; types: number[] } {
  if (typeof text !== 'string' || text.trim() === '') throw new Error('type a sentence first');
  const pair = textPair !== undefined && textPair !== null && textPair !== '';
  if (pair && task.kind === 'single') throw new Error(`task ${task.name} takes one text; leave the second sentence empty`);
  if (!pair && task.kind === 'pair') throw new Error(`task ${task.name} takes a text pair; give the second sentence too`);
  const e = task.tokenizer.encode(text, pair ? textPair : undefined, task.maxLength);
  return { ids: e.inputIds, types: e.tokenTypeIds };
}

async function run(task: Task, rows: { ids: number[]; types: number[] }[]): Promise<number[][]> {
  const { rows: n, seq, ids, mask, types } = packRows(rows);
  const feeds: Record<string, OrtTensor> = { ...task.feeds };
  const given: Record<string, BigInt64Array> = { input_ids: ids, attention_mask: mask, token_type_ids: types };
  for (const name of session.inputNames) if (given[name]) feeds[name] = new ort.Tensor('int64', given[name], [n, seq]);
  const out = await session.run(feeds);
  const logits = out.logits;
  if (!logits) throw new Error(`the model has no 'logits' output (outputs: ${session.outputNames.join(', ')})`);
  const width = logits.dims[logits.dims.length - 1]!;
  const data = logits.data as Float32Array;
  return rows.map((_, i) => Array.from(data.subarray(i * width, i * width + task.numLabels)));
}

function taskOrCurrent(name?: string): Task {
  if (name === undefined || name === null || name === '') {
    if (!current) throw new Error('no task loaded; drop a delta or train one');
    return current;
  }
  const t = tasks.get(name);
  if (!t) throw new Error(`no task '${name}'; tasks: ${[...tasks.keys()].join(', ') || 'none'}`);
  return t;
}

serveCalls({
  async init(args: { siteUrl: string; heapLimitBytes: number; threads?: number }) {
    siteUrl = args.siteUrl;
    requestThreads(args.threads);
    const r = await fetch(new URL('site.json', siteUrl));
    if (!r.ok) throw new Error(`site.json: HTTP ${r.status}; is 'modtune web' running?`);
    site = (await r.json()) as SiteManifest;
    const problem = heapProblem(site.model.file, site.model.bytes, args.heapLimitBytes);
    if (problem) throw new Error(problem);
    ort = await loadOrt();
    const [model, switchable] = await Promise.all([fetchBytes(site.model.file), fetchBytes(site.switchable.file)]);
    try {
      session = await ort.InferenceSession.create(model, { graphOptimizationLevel: 'all' });
    } catch (e) {
      const msg = messageOf(e);
      if (WASM_OOM.test(msg)) throw new Error(`${site.model.file}: out of WebAssembly memory loading the model (${msg}); it does not fit onnxruntime-web's heap (4 GiB at most) — serve a smaller model`);
      throw new Error(`${site.model.file}: onnxruntime-web could not load it: ${msg}`);
    }
    const st = parseSafetensors(switchable, site.switchable.file);
    defaults = new Map([...st.tensors].map(([k, t]) => [k, new ort.Tensor('float32', t.data, t.shape)]));
    for (const t of site.tasks) {
      const files = await Promise.all(['delta.json', 'delta.safetensors'].map(async (f) => ({ name: f, bytes: await fetchBytes(`${t.delta}/${f}`) })));
      const d = await readDeltaFiles(files, site);
      await addTask(d, await siteTokenizer(t.tokenizer), 'server', t.name);
    }
    return { site, tasks: [...tasks.values()].map(info), threads: threadCount() };
  },

  async addDelta(args: { files: DroppedFile[]; name?: string; source?: 'dropped' | 'trained' }) {
    const d = await readDeltaFiles(args.files, site);
    return addTask(d, await tokenizerFor(d), args.source ?? 'dropped', args.name);
  },

  tasks() {
    return [...tasks.values()].map(info);
  },

  /** Switch task: only which feeds the next run uses changes. Returns the time it took, in ms. */
  useTask(args: { name: string }) {
    const t0 = performance.now();
    current = taskOrCurrent(args.name);
    return { task: current.name, ms: performance.now() - t0 };
  },

  /** `n` task switches in a loop, for the bench (one switch is below the timer's resolution): ms per switch. */
  timeSwitches(args: { n: number; names: string[] }) {
    const list = args.names.map((name) => taskOrCurrent(name));
    const t0 = performance.now();
    for (let i = 0; i < args.n; i++) current = list[i % list.length];
    return { msPerSwitch: (performance.now() - t0) / args.n };
  },

  async predict(args: { text: string; textPair?: string; task?: string }): Promise<PredictResult> {
    const t0 = performance.now();
    const task = taskOrCurrent(args.task);
    current = task;
    const row = encode(task, args.text, args.textPair);
    const t1 = performance.now();
    const [logits] = await run(task, [row]);
    const t2 = performance.now();
    const r = interpretLogits(logits!, task.regression, task.labels);
    const out: PredictResult = { task: task.name, logits: logits!, runMs: t2 - t1, totalMs: t2 - t0 };
    if (task.regression) out.score = r.score!;
    else {
      out.label = r.label!;
      out.probabilities = Object.fromEntries(r.probabilities!.map((p, i) => [task.labels?.[i] ?? String(i), p]));
    }
    return out;
  },

  /** Latency of `n` runs of one already tokenized input of `tokens` tokens (median in ms), for the bench. */
  async timeRuns(args: { tokens: number; n: number; task?: string }) {
    const task = taskOrCurrent(args.task);
    const ids = [101, ...Array.from({ length: args.tokens - 2 }, (_, i) => 1000 + ((i * 7919) % 28000)), 102];
    const row = { ids, types: ids.map(() => 0) };
    const times: number[] = [];
    for (let i = 0; i < args.n; i++) {
      const t0 = performance.now();
      await run(task, [row]);
      times.push(performance.now() - t0);
    }
    return { times };
  },
});
