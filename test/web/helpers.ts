/**
 * What the browser tests need: a random bert-tiny built by the library, real deltas (a few
 * training steps on ../shared/glue through `train`, then `exportDelta`), the page bundled from the
 * current sources, `modtune web` serving it all, and Debian's Chromium driven by playwright-core.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { buildBert } from '../../src/bert/build.js';
import { presetConfig } from '../../src/bert/config.js';
import { exportDelta } from '../../src/export/export.js';
import { saveModel } from '../../src/onnx/io.js';
import { train } from '../../src/train/index.js';
import { buildPage } from '../../src/web/bundle.js';
import { GLUE, VOCAB } from '../helpers/paths.js';

export const CHROMIUM = process.env.MODTUNE_TEST_CHROMIUM ?? '/usr/bin/chromium';

/** The system Chromium, or a failure that says how to get one (these tests never download a browser). */
export function requireChromium(file = CHROMIUM): string {
  if (!fs.existsSync(file)) {
    throw new Error(`Chromium not found at ${file}: install Debian's 'chromium' package (apt-get install chromium) or set MODTUNE_TEST_CHROMIUM to a Chromium binary; the browser tests need a real browser`);
  }
  return file;
}

export function writeTinyBase(dir: string, seed = 1, file = 'bert-tiny.onnx'): string {
  const out = path.join(dir, file);
  saveModel(buildBert({ config: presetConfig('bert-tiny'), seed, perturbLayerNorm: true }), out);
  return out;
}

/** A real delta: `steps` LayerNorm training steps on GLUE `task`, exported. */
export async function trainedDelta(base: string, task: string, dir: string, steps = 4): Promise<string> {
  const run = path.join(dir, `run-${task}`);
  await train({
    model: base, train: 'layernorm', task, maxSteps: steps, batchSize: 8, maxLength: 32, lr: 1e-2, limitTrain: 64, limitEval: 16,
    evalEvery: steps, dropout: 0, tokenizer: VOCAB, data: GLUE, out: run, newHead: true, cacheDir: false, seed: 3, log: () => undefined,
  });
  const out = path.join(dir, `delta-${task}`);
  exportDelta({ run, out, checkpoint: 'last' });
  return out;
}

export async function bundledPage(dir: string): Promise<string> {
  return buildPage(path.join(dir, 'page'));
}

export const BROWSER_ARGS = [
  '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
  '--disable-quic', '--no-first-run', '--disable-sync',
];

/** Headless Chromium with a fresh profile in `dir`; the page's console errors are collected. */
export async function openBrowser(dir: string): Promise<{ context: BrowserContext; page: Page; errors: string[]; close(): Promise<void> }> {
  const executablePath = requireChromium();
  const profile = fs.mkdtempSync(path.join(dir, 'profile-'));
  const context = await chromium.launchPersistentContext(profile, { executablePath, headless: true, args: BROWSER_ARGS, acceptDownloads: true });
  const page = context.pages()[0] ?? (await context.newPage());
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  return {
    context, page, errors,
    close: async () => {
      await context.close();
      fs.rmSync(profile, { recursive: true, force: true });
    },
  };
}
