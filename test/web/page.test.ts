/**
 * The page in Debian's Chromium (headless, through playwright-core): its predictions against
 * `modtune predict` on merged models, task switching, on-device training and the delta it
 * downloads, and bad input. One server and one browser for the file; each test opens its own tab.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { mergeFiles } from '../../src/export/merge.js';
import { Predictor } from '../../src/predict/predictor.js';
import { serveWeb, type WebServer } from '../../src/web/index.js';
import { modtune } from '../export/helpers.js';
import { GLUE, tmpDir } from '../helpers/paths.js';
import { bundledPage, openBrowser, trainedDelta, writeTinyBase } from './helpers.js';

const SENTENCE = 'a gripping, beautifully shot film';
const PAIR: [string, string] = ['A man is playing a guitar.', 'A man plays music.'];

let dir: string;
let base: string;
let deltas: Record<'sst2' | 'cola' | 'rte', string>;
let server: WebServer;
let browser: Awaited<ReturnType<typeof openBrowser>>;

interface PagePrediction {
  task: string;
  label?: string;
  probabilities?: Record<string, number>;
  score?: number;
}

beforeAll(async () => {
  dir = tmpDir('modtune-web-');
  base = writeTinyBase(dir);
  deltas = {
    sst2: await trainedDelta(base, 'sst2', dir),
    cola: await trainedDelta(base, 'cola', dir),
    rte: await trainedDelta(base, 'rte', dir),
  };
  const page = await bundledPage(dir);
  server = await serveWeb({
    model: base, deltas: [deltas.sst2, deltas.cola, deltas.rte], port: 0, page, cacheDir: path.join(dir, 'cache'), data: GLUE,
    trainTasks: ['sst2', 'rte', 'stsb'], trainRows: 200, devRows: 48, lr: 5e-3, batchSize: 16,
  });
  browser = await openBrowser(dir);
}, 600_000);

afterAll(async () => {
  await browser?.close();
  await server?.close();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

/** expect.poll with room for a busy machine (a prediction in the page can take seconds there). */
function poll<T>(fn: () => T | Promise<T>) {
  return expect.poll(fn, { timeout: 60_000, interval: 100 });
}

async function openPage(query = ''): Promise<Page> {
  const page = await browser.context.newPage();
  page.on('pageerror', (e) => browser.errors.push(e.message));
  await page.goto(`${server.url}${query}`);
  return page;
}

async function ready(page: Page): Promise<void> {
  await page.evaluate(() => (window as unknown as { modtune: { ready: Promise<void> } }).modtune.ready);
}

function pagePredict(page: Page, text: string, textPair?: string, task?: string): Promise<PagePrediction> {
  return page.evaluate(([t, p, k]) => (window as any).modtune.predict(t, p, k), [text, textPair, task] as const);
}

/** `modtune predict MODEL --text ... --json` (the CLI, onnxruntime-node). */
function cliPredict(model: string, text: string, textPair?: string): { label: string | null; probabilities: Record<string, number> } {
  const args = ['predict', model, '--text', text, '--json'];
  if (textPair !== undefined) args.push('--text-pair', textPair);
  const r = modtune(...args);
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  return JSON.parse(r.stdout.trim().split('\n')[0]!);
}

function merged(delta: string, name: string): string {
  const out = path.join(dir, 'merged', `${name}.onnx`);
  mergeFiles({ base, delta, out });
  return out;
}

function expectSameProbabilities(page: PagePrediction, reference: Record<string, number>): void {
  expect(Object.keys(page.probabilities!)).toEqual(Object.keys(reference));
  for (const [label, p] of Object.entries(reference)) expect(Math.abs(page.probabilities![label]! - p)).toBeLessThanOrEqual(1e-4);
}

// End-to-end in a real browser: minutes on a busy 2-core machine.
describe('modtune web in Chromium', { timeout: 600_000 }, () => {
  it('serves a cross-origin isolated page on loopback, with wasm threads, and nothing outside its folders', async () => {
    expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
    const res = await fetch(server.url);
    expect(res.headers.get('cross-origin-opener-policy')).toBe('same-origin');
    expect(res.headers.get('cross-origin-embedder-policy')).toBe('require-corp');
    for (const p of ['site/../site/site.json/..', '%2e%2e/package.json', 'site/%2e%2e/%2e%2e/package.json', '..%2fpackage.json', 'site/..%5csite.json']) {
      expect((await fetch(`${server.url}${p}`)).status, p).toBe(404);
    }
    expect((await fetch(`${server.url}site/site.json`)).status).toBe(200);
    expect((await fetch(`${server.url}site/site.json`, { method: 'POST' })).status).toBe(405);
    const page = await openPage();
    await ready(page);
    expect(await page.evaluate(() => globalThis.crossOriginIsolated)).toBe(true);
    await poll(() => page.textContent('#facts')).toMatch(/2 layers, hidden 128 .* wasm threads? \(cross-origin isolated\)/);
    expect(await page.evaluate(() => (window as any).modtune.tasks())).toEqual(['SST-2', 'CoLA', 'RTE']);
    await page.close();
  });

  it("predicts what 'modtune predict' gives on the merged model (≤ 1e-4), for a single text and a pair", async () => {
    const page = await openPage();
    await ready(page);
    const sst2 = cliPredict(merged(deltas.sst2, 'sst2'), SENTENCE);
    const onPage = await pagePredict(page, SENTENCE, undefined, 'SST-2');
    expect(onPage.label).toBe(sst2.label);
    expectSameProbabilities(onPage, sst2.probabilities);

    const rte = cliPredict(merged(deltas.rte, 'rte'), ...PAIR);
    const pairOnPage = await pagePredict(page, PAIR[0], PAIR[1], 'RTE');
    expect(pairOnPage.label).toBe(rte.label);
    expectSameProbabilities(pairOnPage, rte.probabilities);
    await page.close();
  });

  it("switching task in the page's form changes the answer to the other delta's", async () => {
    const page = await openPage();
    await ready(page);
    const reference = await Predictor.load({ base, deltas: [deltas.sst2, deltas.cola], runtime: 'node' });
    const expected: Record<string, number[]> = {};
    for (const task of ['SST-2', 'CoLA']) {
      reference.useTask(task);
      expected[task] = (await reference.predict([SENTENCE]))[0]!.probabilities!;
    }
    await reference.release();
    expect(Math.abs(expected['SST-2']![0]! - expected['CoLA']![0]!)).toBeGreaterThan(1e-3);

    await page.fill('#text', SENTENCE);
    for (const task of ['SST-2', 'CoLA', 'SST-2']) {
      await page.selectOption('#task', task);
      await page.click('#predict');
      await poll(async () => (await page.$$eval('#result .bar .p', (els) => els.map((e) => Number(e.textContent)))).join(' '))
        .toBe(expected[task]!.map((p) => p.toFixed(4)).map(Number).join(' '));
    }
    await poll(() => page.textContent('#latency')).toMatch(/ms/);
    await page.close();
  });

  it('20 training steps on a dropped TSV lower the loss; the downloaded delta, merged by modtune merge, predicts what the page predicts', async () => {
    const page = await openPage();
    await ready(page);
    // A dropped TSV in SST-2's train layout: 16 rows, so every step sees the same 15 (one is held out).
    const rows = fs.readFileSync(path.join(GLUE, 'SST-2', 'train.tsv'), 'utf8').split('\n').slice(0, 17).join('\n') + '\n';
    const tsv = path.join(dir, 'my-sst2.tsv');
    fs.writeFileSync(tsv, rows);
    await page.selectOption('#train-task', 'SST-2');
    await page.setInputFiles('#tsv-file', tsv);
    await poll(() => page.textContent('#tsv-label')).toContain('my-sst2.tsv');
    await page.fill('#steps', '20');
    const result = page.waitForFunction(() => document.querySelector('#train-status')?.textContent?.startsWith('done'), undefined, { timeout: 240_000 });
    await page.click('#train');
    // The worker keeps the page responsive: the chart draws while it trains.
    await poll(() => page.$$eval('#loss-chart polyline', (els) => els.length)).toBe(1);
    await result;
    expect(await page.textContent('#message')).toBe('');
    const losses: number[] = await page.evaluate(async () => {
      const points = document.querySelector('#loss-chart polyline')!.getAttribute('points')!.trim().split(' ');
      return points.map((p) => Number(p.split(',')[1]));
    });
    expect(losses).toHaveLength(20);
    // Chart y grows downwards: a lower loss is a larger y.
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    expect(mean(losses.slice(-5))).toBeGreaterThan(mean(losses.slice(0, 5)));

    // The same through the API: its losses (not the chart's pixels) go down.
    const api = await page.evaluate(async (text) => {
      const r = await (window as any).modtune.train({ task: 'SST-2', steps: 20, tsv: { name: 'my-sst2.tsv', text } });
      return { losses: r.losses as number[], before: r.before, after: r.after };
    }, rows);
    expect(api.losses).toHaveLength(20);
    expect(mean(api.losses.slice(-5))).toBeLessThan(mean(api.losses.slice(0, 5)));
    // Dev metrics come back (two held-out rows: a 14-row training set overfits, so no claim on them).
    expect(Object.keys(api.after.metrics)).toEqual(['accuracy']);

    const saved = path.join(dir, 'downloaded');
    fs.mkdirSync(saved);
    const downloads: Promise<void>[] = [];
    page.on('download', (d) => downloads.push(d.saveAs(path.join(saved, d.suggestedFilename()))));
    await page.click('#download');
    await poll(() => downloads.length).toBe(3);
    await Promise.all(downloads);
    expect(fs.readdirSync(saved).sort()).toEqual(['delta.json', 'delta.safetensors', 'vocab.txt']);

    await page.click('#use-now');
    await poll(() => page.textContent('#message')).toMatch(/Task SST-2 · [0-9a-f]{8} is in the list/);
    const task = await page.$eval('#task', (el) => (el as HTMLSelectElement).value);
    const onPage = await pagePredict(page, SENTENCE, undefined, task);

    const out = path.join(dir, 'merged', 'downloaded.onnx');
    const merge = modtune('merge', base, saved, '--out', out);
    expect(merge.stderr).toBe('');
    expect(merge.code).toBe(0);
    const cli = cliPredict(out, SENTENCE);
    expect(onPage.label).toBe(cli.label);
    expectSameProbabilities(onPage, cli.probabilities);
    if (process.env.MODTUNE_WEB_SCREENSHOT) {
      // The README's picture: a run on the server's rows, and a prediction.
      await page.selectOption('#train-task', 'RTE');
      await page.selectOption('#train-task', 'SST-2');
      await page.fill('#steps', '40');
      await page.click('#train');
      await page.waitForFunction(() => document.querySelector('#train-status')?.textContent?.startsWith('done'), undefined, { timeout: 600_000 });
      await page.selectOption('#task', 'SST-2');
      await page.fill('#text', SENTENCE);
      await page.click('#predict');
      await poll(() => page.$$eval('#result .bar', (els) => els.length)).toBe(2);
      await page.setViewportSize({ width: 1280, height: 760 });
      await page.screenshot({ path: process.env.MODTUNE_WEB_SCREENSHOT });
    }
    await page.close();
  });

  it('a delta for another base, a malformed TSV and a broken delta get one-line messages; the page keeps working', async () => {
    const other = writeTinyBase(path.join(dir, 'other'), 2, 'other.onnx');
    const foreign = await trainedDelta(other, 'sst2', path.join(dir, 'other'), 2);
    const page = await openPage();
    await ready(page);
    const message = () => page.textContent('#message');

    await page.setInputFiles('#delta-files', ['delta.json', 'delta.safetensors', 'vocab.txt'].map((f) => path.join(foreign, f)));
    await poll(message).toMatch(/^delta\.json: made for base sha256 [0-9a-f]{12}…, but this page serves bert-tiny\.onnx \([0-9a-f]{12}…\); it belongs to another model$/);

    await page.setInputFiles('#delta-files', [path.join(deltas.sst2, 'delta.json')]);
    await poll(message).toMatch(/^a delta needs delta\.json and delta\.safetensors together \(got delta\.json\)/);

    const corrupt = path.join(dir, 'corrupt');
    fs.mkdirSync(corrupt);
    fs.copyFileSync(path.join(deltas.sst2, 'delta.json'), path.join(corrupt, 'delta.json'));
    const bytes = fs.readFileSync(path.join(deltas.sst2, 'delta.safetensors'));
    bytes[bytes.length - 1] ^= 0xff;
    fs.writeFileSync(path.join(corrupt, 'delta.safetensors'), bytes);
    await page.setInputFiles('#delta-files', [path.join(corrupt, 'delta.json'), path.join(corrupt, 'delta.safetensors')]);
    await poll(message).toMatch(/^delta\.safetensors: sha256 [0-9a-f]{12}… does not match delta\.json/);

    const bad = path.join(dir, 'bad.tsv');
    fs.writeFileSync(bad, 'sentence\tlabel\na fine film\t1\nnot a label\tmaybe\n');
    await page.selectOption('#train-task', 'SST-2');
    await page.setInputFiles('#tsv-file', bad);
    await page.fill('#steps', '2');
    await page.click('#train');
    await poll(message).toMatch(/^bad\.tsv:3: label 'maybe' is not one of 0, 1/);

    const badHeader = path.join(dir, 'bad-header.tsv');
    fs.writeFileSync(badHeader, 'text\tscore\tmore\nx\t1\ty\n');
    await page.setInputFiles('#tsv-file', badHeader);
    await page.click('#train');
    await poll(message).toMatch(/^bad-header\.tsv:1: header has 3 tab-separated columns, expected 2$/);

    // Still predicting, the bad deltas not added.
    expect(await page.evaluate(() => (window as any).modtune.tasks())).toEqual(['SST-2', 'CoLA', 'RTE']);
    expect((await pagePredict(page, SENTENCE, undefined, 'CoLA')).label).toMatch(/^[01]$/);
    const wrongKind = await page.evaluate(() => (window as any).modtune.predict('only one', undefined, 'RTE').then(() => 'resolved', (e: Error) => e.message));
    expect(wrongKind).toBe('task RTE takes a text pair; give the second sentence too');
    expect(browser.errors).toEqual([]);
    await page.close();
  });

  it('trains a regression task (STS-B) on the server rows; the new task answers with a score', async () => {
    const page = await openPage();
    await ready(page);
    const r = await page.evaluate(async () => {
      const m = (window as any).modtune;
      const t = await m.train({ task: 'STS-B', steps: 3, batchSize: 8 });
      const name = await m.useNow();
      return { losses: t.losses as number[], after: t.after, name, prediction: await m.predict('A man is playing a guitar.', 'A man plays music.', name) };
    });
    expect(r.losses).toHaveLength(3);
    expect(r.losses.every((l) => Number.isFinite(l))).toBe(true);
    expect(Object.keys(r.after.metrics).sort()).toEqual(['pearson', 'spearman']);
    expect(r.name).toMatch(/^STS-B · [0-9a-f]{8}$/);
    expect(Object.keys(r.prediction).sort()).toEqual(['logits', 'runMs', 'score', 'task', 'totalMs']);
    expect(Number.isFinite(r.prediction.score)).toBe(true);
    await page.close();
  });

  it('a model too large for the wasm heap is refused before loading, with a message on the page', async () => {
    // The served bert-tiny is 16.8 MiB; a device whose wasm heap allows 32 MiB cannot hold it.
    const page = await openPage('?heapLimitMiB=32');
    const failure = await page.evaluate(() => (window as any).modtune.ready.then(() => 'loaded', (e: Error) => e.message));
    expect(failure).toMatch(/^model\.onnx \(16\.8 MiB\) needs about \d+\.\d MiB of WebAssembly memory, more than this page's limit of 32\.0 MiB; serve a smaller model/);
    expect(await page.textContent('#message')).toBe(failure);
    expect(await page.textContent('#facts')).toBe('not loaded');
    expect(await page.isDisabled('#predict')).toBe(true);
    expect(browser.errors).toEqual([]);
    await page.close();
  });
});
