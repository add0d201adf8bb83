/**
 * The page: predict with any served, dropped or freshly trained task, tune LayerNorms on the
 * device, download the result as a delta. Two workers do the work (prediction, training); this
 * script only draws and wires them, and exposes the same actions as `window.modtune`.
 */
import type { SiteManifest } from '../site-manifest.js';
import { formatMiB, formatSize, WASM_HEAP_MAX } from './heap.js';
import type { PredictResult, TaskInfo } from './predict-worker.js';
import { WorkerClient } from './rpc.js';
import type { TrainResult } from './train-worker.js';

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const siteUrl = new URL('site/', location.href).href;
const params = new URLSearchParams(location.search);
const heapLimitBytes = params.has('heapLimitMiB') ? Number(params.get('heapLimitMiB')) * 2 ** 20 : WASM_HEAP_MAX;
/** `?threads=N`: wasm threads per worker (default min(4, cores) when cross-origin isolated). */
const threads = params.has('threads') ? Number(params.get('threads')) : undefined;

const predictor = new WorkerClient(new URL('predict-worker.js', import.meta.url), (m) => showMessage(`Prediction ${m}`));
const trainer = new WorkerClient(new URL('train-worker.js', import.meta.url), (m) => showMessage(`Training ${m}`));

let site: SiteManifest | undefined;
let tasks: TaskInfo[] = [];
let lastTraining: TrainResult | undefined;
let trainedUsed = false;
let busyTraining = false;

function showMessage(text: string, kind: 'error' | 'info' = 'error'): void {
  const el = $('message');
  el.textContent = text;
  el.className = `notice${kind === 'info' ? ' info' : ''}`;
  el.hidden = false;
}

function clearMessage(): void {
  $('message').hidden = true;
  $('message').textContent = '';
}

/** Run an action from the page: its error becomes the one-line message, never an exception. */
async function guarded<T>(fn: () => Promise<T>): Promise<T | undefined> {
  try {
    clearMessage();
    return await fn();
  } catch (e) {
    showMessage((e as Error).message);
    return undefined;
  }
}

// ---- tasks ---------------------------------------------------------------------------------------

function renderTasks(select?: string): void {
  const el = $<HTMLSelectElement>('task');
  const keep = select ?? el.value;
  el.replaceChildren(...tasks.map((t) => new Option(`${t.name}${t.source === 'server' ? '' : t.source === 'trained' ? ' · trained here' : ' · dropped'}`, t.name)));
  if (tasks.some((t) => t.name === keep)) el.value = keep;
  el.disabled = tasks.length === 0;
  $<HTMLButtonElement>('predict').disabled = tasks.length === 0;
  renderTaskKind();
}

function currentTask(): TaskInfo | undefined {
  return tasks.find((t) => t.name === $<HTMLSelectElement>('task').value);
}

function renderTaskKind(): void {
  const t = currentTask();
  $('task-kind').textContent = !t ? '' : t.regression ? 'similarity score' : `${t.labels?.length ?? '?'} labels${t.kind === 'pair' ? ' · text pair' : ''}`;
  $('pair-field').hidden = t?.kind !== 'pair';
}

// ---- predict -------------------------------------------------------------------------------------

function renderResult(r: PredictResult): void {
  const out = $('result');
  out.replaceChildren();
  const head = document.createElement('div');
  head.className = 'label';
  if (r.score !== undefined) {
    head.textContent = `score ${r.score.toFixed(4)}`;
    out.append(head);
  } else {
    head.textContent = r.label!;
    out.append(head);
    for (const [name, p] of Object.entries(r.probabilities!)) {
      const row = document.createElement('div');
      row.className = 'bar';
      row.innerHTML = '<span class="name"></span><span class="track"><span class="fill"></span></span><span class="p"></span>';
      (row.querySelector('.name') as HTMLElement).textContent = name;
      (row.querySelector('.fill') as HTMLElement).style.width = `${(p * 100).toFixed(1)}%`;
      (row.querySelector('.p') as HTMLElement).textContent = p.toFixed(4);
      out.append(row);
    }
  }
  $('latency').textContent = `${r.totalMs.toFixed(1)} ms (model ${r.runMs.toFixed(1)} ms)`;
}

async function predict(text: string, textPair?: string, task?: string): Promise<PredictResult> {
  await ready;
  return predictor.call<PredictResult>('predict', { text, textPair, task });
}

async function predictFromForm(): Promise<void> {
  const t = currentTask();
  const pair = t?.kind === 'pair' ? $<HTMLTextAreaElement>('text-pair').value : undefined;
  const r = await guarded(() => predict($<HTMLTextAreaElement>('text').value, pair, t?.name));
  if (r) renderResult(r);
}

// ---- deltas --------------------------------------------------------------------------------------

async function readFiles(files: FileList | File[]): Promise<{ name: string; bytes: Uint8Array }[]> {
  return Promise.all([...files].map(async (f) => ({ name: f.name, bytes: new Uint8Array(await f.arrayBuffer()) })));
}

async function loadDelta(files: FileList | File[]): Promise<string> {
  await ready;
  const info = await predictor.call<TaskInfo>('addDelta', { files: await readFiles(files), source: 'dropped' });
  tasks.push(info);
  renderTasks(info.name);
  showMessage(`Added task ${info.name}.`, 'info');
  return info.name;
}

// ---- training ------------------------------------------------------------------------------------

let droppedTsv: { name: string; text: string } | undefined;

function drawLoss(losses: number[], steps: number): void {
  const svg = $('loss-chart') as unknown as SVGSVGElement;
  const W = 600, H = 200, L = 44, B = 22, T = 10, R = 10;
  if (losses.length === 0) {
    svg.innerHTML = '';
    return;
  }
  const max = Math.max(...losses);
  const min = Math.min(...losses);
  const span = max - min || 1;
  const x = (i: number) => L + ((W - L - R) * i) / Math.max(1, steps - 1);
  const y = (v: number) => T + (H - T - B) * (1 - (v - min) / span);
  const points = losses.map((v, i) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`).join(' ');
  svg.innerHTML =
    `<line class="axis" x1="${L}" y1="${H - B}" x2="${W - R}" y2="${H - B}"/><line class="axis" x1="${L}" y1="${T}" x2="${L}" y2="${H - B}"/>` +
    `<text x="${L - 6}" y="${T + 8}" text-anchor="end">${max.toFixed(3)}</text><text x="${L - 6}" y="${H - B}" text-anchor="end">${min.toFixed(3)}</text>` +
    `<text x="${W - R}" y="${H - 6}" text-anchor="end">step ${losses.length} / ${steps}</text><text x="${L}" y="${H - 6}">loss</text>` +
    `<polyline class="loss" points="${points}"/>`;
}

function renderMetrics(r: TrainResult): void {
  const el = $('train-metrics');
  el.replaceChildren();
  const add = (html: string) => {
    const span = document.createElement('span');
    span.innerHTML = html;
    el.append(span);
  };
  if (r.before && r.after) {
    for (const [k, v] of Object.entries(r.after.metrics)) {
      const b = r.before.metrics[k]!;
      add(`dev ${k} <b>${b.toFixed(4)}</b> → <b class="${v > b ? 'up' : ''}">${v.toFixed(4)}</b>`);
    }
    add(`dev loss <b>${r.before.loss.toFixed(4)}</b> → <b>${r.after.loss.toFixed(4)}</b>`);
  }
  const median = [...r.stepMs].sort((a, b) => a - b)[Math.floor(r.stepMs.length / 2)]!;
  add(`${r.trainRows} train / ${r.devRows} dev rows · ${median.toFixed(0)} ms per step`);
}

async function train(opts: { task: string; steps: number; batchSize?: number; tsv?: { name: string; text: string }; seed?: number; evaluate?: boolean }): Promise<TrainResult> {
  await ready;
  if (busyTraining) throw new Error('a training run is in progress; wait for it to finish');
  busyTraining = true;
  $<HTMLButtonElement>('train').disabled = true;
  const losses: number[] = [];
  drawLoss([], opts.steps);
  const off = trainer.on('step', (s: { step: number; steps: number; loss: number; ms: number }) => {
    losses.push(s.loss);
    drawLoss(losses, s.steps);
    $('train-status').textContent = `step ${s.step}/${s.steps} · loss ${s.loss.toFixed(4)}`;
  });
  $('train-status').textContent = 'loading the training artifacts…';
  try {
    const r = await trainer.call<TrainResult>('train', { ...opts, heapLimitBytes });
    lastTraining = r;
    trainedUsed = false;
    renderMetrics(r);
    $('train-status').textContent = `done: ${r.losses.length} steps on ${r.task}`;
    $<HTMLButtonElement>('download').disabled = false;
    $<HTMLButtonElement>('use-now').disabled = false;
    return r;
  } catch (e) {
    $('train-status').textContent = 'stopped';
    throw e;
  } finally {
    off();
    busyTraining = false;
    $<HTMLButtonElement>('train').disabled = false;
  }
}

function lastDeltaFiles(): { name: string; bytes: Uint8Array }[] {
  if (!lastTraining) throw new Error('train a task first');
  return [
    { name: 'delta.json', bytes: lastTraining.delta.json },
    { name: 'delta.safetensors', bytes: lastTraining.delta.safetensors },
  ];
}

/** "Use now": the trained delta joins the task list (only its tensors are new feeds). */
async function useNow(): Promise<string> {
  const files = lastDeltaFiles();
  if (trainedUsed) throw new Error('this training result is already in the task list');
  const name = `${lastTraining!.task} · ${lastTraining!.delta.sha256.slice(0, 8)}`;
  const info = await predictor.call<TaskInfo>('addDelta', { files, source: 'trained', name });
  trainedUsed = true;
  tasks.push(info);
  renderTasks(info.name);
  return info.name;
}

/** "Download delta": delta.json, delta.safetensors and the tokenizer file they name — a folder `modtune merge` takes. */
async function download(): Promise<string[]> {
  const files = lastDeltaFiles();
  const tok = await fetch(new URL(lastTraining!.delta.tokenizerUrl, siteUrl));
  if (!tok.ok) throw new Error(`${lastTraining!.delta.tokenizerFile}: HTTP ${tok.status}`);
  files.push({ name: lastTraining!.delta.tokenizerFile, bytes: new Uint8Array(await tok.arrayBuffer()) });
  for (const f of files) {
    const a = document.createElement('a');
    a.href = URL.createObjectURL(new Blob([f.bytes as unknown as BlobPart]));
    a.download = f.name;
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 60_000);
  }
  showMessage(`Saved ${files.map((f) => f.name).join(', ')}: put them in one folder, then 'modtune merge BASE FOLDER --out tuned.onnx'.`, 'info');
  return files.map((f) => f.name);
}

async function trainFromForm(): Promise<void> {
  const task = $<HTMLSelectElement>('train-task').value;
  const steps = Number($<HTMLInputElement>('steps').value);
  const batchSize = Number($<HTMLInputElement>('batch').value);
  await guarded(() => train({ task, steps, batchSize, tsv: droppedTsv }));
}

// ---- wiring --------------------------------------------------------------------------------------

function dropzone(zone: HTMLElement, input: HTMLInputElement, onFiles: (files: File[]) => Promise<unknown>): void {
  input.addEventListener('change', () => {
    const files = [...(input.files ?? [])];
    input.value = '';
    if (files.length) void guarded(() => onFiles(files));
  });
  zone.addEventListener('dragover', (e) => {
    e.preventDefault();
    zone.classList.add('over');
  });
  zone.addEventListener('dragleave', () => zone.classList.remove('over'));
  zone.addEventListener('drop', (e) => {
    e.preventDefault();
    zone.classList.remove('over');
    const files = [...(e.dataTransfer?.files ?? [])];
    if (files.length) void guarded(() => onFiles(files));
  });
}

async function start(): Promise<void> {
  const [p] = await Promise.all([
    predictor.call<{ site: SiteManifest; tasks: TaskInfo[]; threads: number }>('init', { siteUrl, heapLimitBytes, threads }),
    trainer.call('init', { siteUrl, threads }),
  ]);
  site = p.site;
  tasks = p.tasks;
  renderTasks();
  const b = site.base;
  $('facts').textContent = `${b.file} · ${b.family}, ${b.numLayers} layers, hidden ${b.hiddenSize} · ${formatMiB(site.model.bytes)} · ` +
    `${p.threads} wasm thread${p.threads > 1 ? 's' : ''}${globalThis.crossOriginIsolated ? ' (cross-origin isolated)' : ' (not isolated)'}`;
  const trainSelect = $<HTMLSelectElement>('train-task');
  trainSelect.replaceChildren(...site.training.tasks.map((t) => new Option(`${t.name} · ${t.trainRows} rows from the server`, t.name)));
  trainSelect.disabled = site.training.tasks.length === 0;
  $<HTMLButtonElement>('train').disabled = site.training.tasks.length === 0;
  $<HTMLInputElement>('batch').value = String(site.training.batchSize);
}

const ready: Promise<void> = start().catch((e: Error) => {
  showMessage(e.message);
  $('facts').textContent = 'not loaded';
  throw e;
});
ready.catch(() => undefined);

$('task').addEventListener('change', () => {
  renderTaskKind();
  void guarded(() => predictor.call('useTask', { name: $<HTMLSelectElement>('task').value }));
});
$('predict').addEventListener('click', () => void predictFromForm());
$('text').addEventListener('keydown', (e) => {
  if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) void predictFromForm();
});
$('train').addEventListener('click', () => void trainFromForm());
$('download').addEventListener('click', () => void guarded(download));
$('use-now').addEventListener('click', () => void guarded(async () => {
  const name = await useNow();
  showMessage(`Task ${name} is in the list; predictions now use it.`, 'info');
}));
dropzone($('delta-drop'), $<HTMLInputElement>('delta-files'), (files) => loadDelta(files));
dropzone($('tsv-drop'), $<HTMLInputElement>('tsv-file'), async (files) => {
  const f = files[0]!;
  droppedTsv = { name: f.name, text: await f.text() };
  $('tsv-label').textContent = `${f.name} (${formatSize(f.size)}) will be used instead of the server's rows — click to choose another`;
});
$('train-task').addEventListener('change', () => {
  droppedTsv = undefined;
  $('tsv-label').textContent = "or drop a TSV in GLUE's train layout for this task (the last tenth is held out)";
});

declare global {
  interface Window { modtune: unknown }
}

window.modtune = {
  ready,
  /** Names of the tasks predictions can use. */
  tasks: async () => {
    await ready;
    return tasks.map((t) => t.name);
  },
  /** `{ task, label, probabilities: {label: p} }` or `{ task, score }`, plus the latency. */
  predict,
  /** Train LayerNorms + head on the device: `{ task, steps, batchSize?, tsv?: {name, text} }` → `{ losses, ... }`. */
  train,
  useNow,
  download,
  loadDelta,
  /** Switch the current task; returns the time the switch took in the worker (ms). */
  useTask: async (name: string) => {
    await ready;
    const r = await predictor.call<{ task: string; ms: number }>('useTask', { name });
    $<HTMLSelectElement>('task').value = r.task;
    renderTaskKind();
    return r;
  },
  /** ms per task switch inside the worker, over `n` switches among `names` (for benchmarks). */
  timeSwitches: async (n: number, names: string[]) => {
    await ready;
    return predictor.call<{ msPerSwitch: number }>('timeSwitches', { n, names });
  },
  /** Raw timings of `n` runs at `tokens` tokens (for benchmarks). */
  timeRuns: async (tokens: number, n: number, task?: string) => {
    await ready;
    return predictor.call<{ times: number[] }>('timeRuns', { tokens, n, task });
  },
  get site() {
    return site;
  },
};
