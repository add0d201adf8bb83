/**
 * The static server of `modtune web` (no browser): nothing outside a mount is ever served, and
 * every response carries the cross-origin isolation headers. Plus the browser tests' guard: a
 * missing Chromium is a failure that says what to install.
 */
import * as fs from 'node:fs';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createStaticServer, resolveStatic, type Mount } from '../../src/web/static-server.js';
import { tmpDir } from '../helpers/paths.js';
import { requireChromium } from './helpers.js';

let dir: string;
let mounts: Mount[];
let server: ReturnType<typeof createStaticServer>;
let url: string;

beforeAll(async () => {
  dir = tmpDir('modtune-static-');
  fs.mkdirSync(path.join(dir, 'page', 'sub'), { recursive: true });
  fs.mkdirSync(path.join(dir, 'site'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'page', 'index.html'), '<p>page</p>');
  fs.writeFileSync(path.join(dir, 'page', 'sub', 'a.js'), 'export {}');
  fs.writeFileSync(path.join(dir, 'site', 'site.json'), '{}');
  fs.writeFileSync(path.join(dir, 'secret.txt'), 'not to be served');
  fs.symlinkSync(path.join(dir, 'secret.txt'), path.join(dir, 'site', 'link.txt'));
  fs.symlinkSync(dir, path.join(dir, 'site', 'up'));
  mounts = [{ prefix: '/site/', dir: path.join(dir, 'site') }, { prefix: '/', dir: path.join(dir, 'page') }];
  server = createStaticServer(mounts);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('static server', () => {
  it('serves files of each mount with their type and the isolation headers', async () => {
    const page = await fetch(`${url}/`);
    expect(page.status).toBe(200);
    expect(await page.text()).toBe('<p>page</p>');
    expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(page.headers.get('cross-origin-opener-policy')).toBe('same-origin');
    expect(page.headers.get('cross-origin-embedder-policy')).toBe('require-corp');
    expect(page.headers.get('cross-origin-resource-policy')).toBe('same-origin');
    expect((await fetch(`${url}/sub/a.js`)).headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    expect(await (await fetch(`${url}/site/site.json`)).text()).toBe('{}');
    const head = await fetch(`${url}/site/site.json`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.headers.get('content-length')).toBe('2');
  });

  it('refuses paths that leave the folder: dot segments, encoded separators, NUL, links out, folders', async () => {
    const refused = [
      '/site/../secret.txt', '/%2e%2e/secret.txt', '/site/%2e%2e/secret.txt', '/site/..%2fsecret.txt', '/site/..%5csecret.txt',
      '/site/link.txt', '/site/up/secret.txt', '/sub', '/site/site.json%00.html', '/%', '/site//site.json',
    ];
    for (const p of refused) {
      const res = await fetch(`${url}${p}`);
      expect(res.status, p).toBe(404);
      expect(res.headers.get('cross-origin-embedder-policy'), p).toBe('require-corp');
    }
    expect(resolveStatic(mounts, '/site/link.txt')).toBeUndefined();
    expect(resolveStatic(mounts, '/site/site.json')).toBe(fs.realpathSync(path.join(dir, 'site', 'site.json')));
  });

  it('answers only GET and HEAD', async () => {
    for (const method of ['POST', 'PUT', 'DELETE']) {
      const res = await fetch(`${url}/index.html`, { method });
      expect(res.status).toBe(405);
      expect(res.headers.get('allow')).toBe('GET, HEAD');
    }
  });
});

describe('browser tests', () => {
  it('fail with what to install when Chromium is missing', () => {
    expect(() => requireChromium('/nonexistent/chromium')).toThrow(
      "Chromium not found at /nonexistent/chromium: install Debian's 'chromium' package (apt-get install chromium) or set MODTUNE_TEST_CHROMIUM to a Chromium binary; the browser tests need a real browser",
    );
  });
});
