/**
 * `modtune web` as a user runs it: it prepares the site, prints where it serves (loopback), serves
 * the page and the site with the isolation headers, and stops cleanly on Ctrl-C; bad flags are one
 * line. No browser here (test/web/page.test.ts has one).
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GLUE, ROOT, tmpDir } from '../helpers/paths.js';
import { trainedDelta, writeTinyBase } from './helpers.js';

let dir: string;
let base: string;
let delta: string;

beforeAll(async () => {
  dir = tmpDir('modtune-web-cli-');
  base = writeTinyBase(dir);
  delta = await trainedDelta(base, 'sst2', dir, 2);
}, 300_000);

afterAll(() => {
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

function startWeb(...args: string[]) {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src/cli/main.ts'), 'web', ...args], {
    cwd: ROOT, env: { ...process.env, MODTUNE_CACHE: path.join(dir, 'cache') }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, exited, out: () => stdout, err: () => stderr };
}

describe('modtune web (CLI)', { timeout: 300_000 }, () => {
  it('serves on loopback, prints the URL, and stops on Ctrl-C', async () => {
    const web = startWeb('--model', base, '--deltas', delta, '--port', '0', '--data', GLUE, '--train-tasks', 'sst2');
    try {
      await expect.poll(() => web.out(), { timeout: 240_000, interval: 200 }).toContain('Ctrl-C stops it.');
      const url = /modtune web: (http:\/\/127\.0\.0\.1:\d+\/)/.exec(web.out())![1]!;
      expect(web.out()).toMatch(/model {5}bert-tiny\.onnx \(16\.8 MiB\), 1 task: SST-2\n {2}training {2}SST-2\n/);
      const page = await fetch(url);
      expect(page.status).toBe(200);
      expect(await page.text()).toContain('<title>modtune · in the browser</title>');
      expect(page.headers.get('cross-origin-embedder-policy')).toBe('require-corp');
      const site = (await (await fetch(`${url}site/site.json`)).json()) as { tasks: { name: string }[]; training: { tasks: { name: string }[] } };
      expect(site.tasks.map((t) => t.name)).toEqual(['SST-2']);
      expect(site.training.tasks.map((t) => t.name)).toEqual(['SST-2']);
      expect((await fetch(`${url}ort/ort-training-wasm-simd-threaded.wasm`, { method: 'HEAD' })).headers.get('content-type')).toBe('application/wasm');
    } finally {
      web.child.kill('SIGINT');
    }
    expect(await web.exited).toBe(0);
  });

  it('refuses a bad port and a delta for another base with one line', async () => {
    const port = startWeb('--model', base, '--port', 'eighty');
    expect(await port.exited).toBe(1);
    expect(port.err()).toBe("modtune: --port should be a number, got 'eighty'\n");

    const other = writeTinyBase(path.join(dir, 'other'), 2, 'other.onnx');
    const foreign = startWeb('--model', other, '--deltas', delta, '--port', '0', '--data', GLUE, '--train-tasks', 'sst2');
    expect(await foreign.exited).toBe(1);
    expect(foreign.err()).toMatch(/(^|\n)modtune: .*delta-sst2\/delta\.json: made for base sha256 [0-9a-f]{12}…, but .*other\.onnx has [0-9a-f]{12}…; pass --force if it holds the same weights\n$/);
  });
});
