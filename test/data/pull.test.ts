import * as fs from 'node:fs';
import { createHash } from 'node:crypto';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { downloadFile } from '../../src/data/download.js';
import { pullGlueTask } from '../../src/data/glue-download.js';
import { readGlueSplit } from '../../src/data/glue-reader.js';
import { resolveGlueDir } from '../../src/data/paths.js';
import { ModtuneError } from '../../src/errors.js';
import { GLUE, tmpDir } from '../helpers/paths.js';
import { buildZip } from './zip-writer.js';

/** A loopback file server with Range support that can cut a response short or ignore Range. */
class FileServer {
  files = new Map<string, Buffer>();
  requests: Array<{ path: string; range?: string; ifRange?: string }> = [];
  /** Paths whose next response stops after this many bytes (connection dropped). */
  cutAfter = new Map<string, number>();
  ignoreRange = false;
  /** Paths whose next response sends this many bytes, then goes quiet with the connection open. */
  stallAfter = new Map<string, number>();
  private server = http.createServer((req, res) => this.handle(req, res));
  base = '';

  async start(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.base = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const url = decodeURIComponent(new URL(req.url ?? '/', this.base).pathname);
    this.requests.push({ path: url, range: req.headers.range, ifRange: req.headers['if-range'] as string | undefined });
    const body = this.files.get(url);
    if (!body) {
      res.writeHead(404, 'Not Found').end();
      return;
    }
    let start = 0;
    const etag = `"${createHash('sha1').update(body).digest('hex')}"`;
    const ifRange = req.headers['if-range'];
    const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    if (range && !this.ignoreRange && (ifRange === undefined || ifRange === etag)) {
      start = Number(range[1]);
      if (start >= body.length) {
        res.writeHead(416, { 'Content-Range': `bytes */${body.length}`, ETag: etag }).end();
        return;
      }
      res.writeHead(206, { 'Content-Length': body.length - start, 'Content-Range': `bytes ${start}-${body.length - 1}/${body.length}`, ETag: etag });
    } else {
      res.writeHead(200, { 'Content-Length': body.length, ETag: etag });
    }
    const stall = this.stallAfter.get(url);
    if (stall !== undefined) {
      this.stallAfter.delete(url);
      res.write(body.subarray(start, start + stall));
      return;
    }
    const cut = this.cutAfter.get(url);
    if (cut !== undefined) {
      this.cutAfter.delete(url);
      res.write(body.subarray(start, start + cut), () => res.destroy());
      return;
    }
    res.end(body.subarray(start));
  }
}

const COLA_TRAIN = 'gj04\t1\t\tThe sailors rode the breeze clear of the rocks.\ngj04\t0\t*\tThe more does Bill smoke, the more Susan hates him.\n';
const COLA_DEV = 'gj04\t1\t\tThe weights made the rope stretch over the pulley.\n';
const COLA_TEST = 'index\tsentence\n0\tBill whistled past the house.\n';
function colaZip(): Buffer {
  return buildZip([
    { name: 'CoLA/' },
    { name: 'CoLA/train.tsv', data: COLA_TRAIN },
    { name: 'CoLA/dev.tsv', data: COLA_DEV },
    { name: 'CoLA/test.tsv', data: COLA_TEST },
    // Incompressible filler, so the archive is big enough to be cut mid-way.
    { name: 'CoLA/original/raw/in_domain_train.tsv', data: Uint8Array.from({ length: 20000 }, (_, i) => (i * 2654435761) >>> 24) },
    { name: '__MACOSX/CoLA/._train.tsv', data: 'resource fork' },
  ]);
}

describe('modtune data pull', () => {
  const server = new FileServer();
  const savedEnv = { ...process.env };
  beforeAll(async () => {
    await server.start();
  });
  afterAll(async () => {
    await server.stop();
  });
  afterEach(() => {
    process.env = { ...savedEnv };
    server.files.clear();
    server.requests = [];
    server.cutAfter.clear();
    server.stallAfter.clear();
    server.ignoreRange = false;
  });

  it('downloads and extracts a task zip into <cache>/glue/<Task>/', async () => {
    const cache = tmpDir();
    server.files.set('/glue/CoLA.zip', colaZip());
    const progress: number[] = [];
    const result = await pullGlueTask('cola', { cacheDir: cache, baseUrl: `${server.base}/glue`, onProgress: (p) => progress.push(p.done) });
    expect(result.alreadyPresent).toBe(false);
    expect(result.taskDir).toBe(path.join(cache, 'glue', 'CoLA'));
    expect(fs.readFileSync(path.join(result.taskDir, 'train.tsv'), 'utf8')).toBe(COLA_TRAIN);
    expect(readGlueSplit('CoLA', 'train', result.root).examples.map((e) => e.label)).toEqual([1, 0]);
    expect(readGlueSplit('CoLA', 'test', result.root).examples).toEqual([{ id: '0', textA: 'Bill whistled past the house.' }]);
    expect(progress[progress.length - 1]).toBe(server.files.get('/glue/CoLA.zip')!.length);
    // Nothing left over: no staging folder, no archive, no macOS metadata.
    expect(fs.readdirSync(path.join(cache, 'glue')).sort()).toEqual(['.downloads', 'CoLA']);
    expect(fs.readdirSync(path.join(cache, 'glue', '.downloads'))).toEqual([]);
    // Already there: no request at all.
    const before = server.requests.length;
    expect((await pullGlueTask('CoLA', { cacheDir: cache, baseUrl: `${server.base}/glue` })).alreadyPresent).toBe(true);
    expect(server.requests.length).toBe(before);
    // And the data is found there without --data.
    process.env.MODTUNE_CACHE = cache;
    delete process.env.MODTUNE_GLUE_DIR;
    expect(resolveGlueDir('cola')).toBe(path.join(cache, 'glue'));
  });

  it('takes the base URL from MODTUNE_GLUE_URL', async () => {
    const cache = tmpDir();
    server.files.set('/mirror/WNLI.zip', buildZip([
      { name: 'WNLI/train.tsv', data: 'index\tsentence1\tsentence2\tlabel\n0\ta\tb\t1\n' },
      { name: 'WNLI/dev.tsv', data: 'index\tsentence1\tsentence2\tlabel\n0\tc\td\t0\n' },
      { name: 'WNLI/test.tsv', data: 'index\tsentence1\tsentence2\n0\te\tf\n' },
    ]));
    process.env.MODTUNE_GLUE_URL = `${server.base}/mirror/`;
    await pullGlueTask('wnli', { cacheDir: cache });
    expect(server.requests.map((r) => r.path)).toEqual(['/mirror/WNLI.zip']);
    expect(readGlueSplit('WNLI', 'dev', path.join(cache, 'glue')).examples).toEqual([{ id: '0', textA: 'c', textB: 'd', label: 0 }]);
  });

  it('resumes an interrupted download with a Range request', async () => {
    const cache = tmpDir();
    const zip = colaZip();
    server.files.set('/glue/CoLA.zip', zip);
    server.cutAfter.set('/glue/CoLA.zip', 1000);
    await expect(pullGlueTask('CoLA', { cacheDir: cache, baseUrl: `${server.base}/glue` })).rejects.toThrow(ModtuneError);
    const part = path.join(cache, 'glue', '.downloads', 'CoLA.zip.part');
    expect(fs.statSync(part).size).toBe(1000);
    expect(fs.existsSync(path.join(cache, 'glue', 'CoLA'))).toBe(false);
    const result = await pullGlueTask('CoLA', { cacheDir: cache, baseUrl: `${server.base}/glue` });
    expect(server.requests.map((r) => r.range)).toEqual([undefined, 'bytes=1000-']);
    expect(server.requests[1]!.ifRange).toBe(`"${createHash('sha1').update(zip).digest('hex')}"`);
    expect(fs.readFileSync(path.join(result.taskDir, 'dev.tsv'), 'utf8')).toBe(COLA_DEV);
    expect(fs.existsSync(part)).toBe(false);
  });

  it('starts over when the server ignores Range', async () => {
    const cache = tmpDir();
    server.files.set('/glue/CoLA.zip', colaZip());
    server.cutAfter.set('/glue/CoLA.zip', 700);
    await expect(pullGlueTask('CoLA', { cacheDir: cache, baseUrl: `${server.base}/glue` })).rejects.toThrow(/the next run resumes from there/);
    server.ignoreRange = true;
    const result = await pullGlueTask('CoLA', { cacheDir: cache, baseUrl: `${server.base}/glue` });
    expect(server.requests[1]!.range).toBe('bytes=700-');
    expect(fs.readFileSync(path.join(result.taskDir, 'train.tsv'), 'utf8')).toBe(COLA_TRAIN);
  });

  it('gives up on a stalled connection and resumes from what arrived', async () => {
    const dest = path.join(tmpDir(), 'f.bin');
    const body = Buffer.from('0123456789'.repeat(1000));
    server.files.set('/f.bin', body);
    server.stallAfter.set('/f.bin', 4000);
    await expect(downloadFile(`${server.base}/f.bin`, dest, { idleTimeoutMs: 300 })).rejects.toThrow(/download failed after 1 attempt \(no data for 0\.3s\); 4000 bytes are kept in .*f\.bin\.part and the next run resumes from there/);
    expect(fs.statSync(`${dest}.part`).size).toBe(4000);
    expect(await downloadFile(`${server.base}/f.bin`, dest, { idleTimeoutMs: 300 })).toBe(body.length);
    expect(fs.readFileSync(dest).equals(body)).toBe(true);
    expect(server.requests.map((r) => r.range)).toEqual([undefined, 'bytes=4000-']);
  });

  it('refuses an archive over the size cap and keeps nothing of it', async () => {
    const cache = tmpDir();
    server.files.set('/glue/CoLA.zip', colaZip());
    await expect(pullGlueTask('CoLA', { cacheDir: cache, baseUrl: `${server.base}/glue`, maxBytes: 2048 })).rejects.toThrow(/CoLA\.zip: \d+ bytes, over the 2048-byte download limit; refused/);
    expect(fs.readdirSync(path.join(cache, 'glue', '.downloads'))).toEqual([]);
    expect(fs.existsSync(path.join(cache, 'glue', 'CoLA'))).toBe(false);
  });

  it('reports HTTP errors with the URL', async () => {
    const cache = tmpDir();
    await expect(pullGlueTask('RTE', { cacheDir: cache, baseUrl: `${server.base}/nothing` }))
      .rejects.toThrow(`download of ${server.base}/nothing/RTE.zip failed: HTTP 404 Not Found`);
    expect(fs.existsSync(path.join(cache, 'glue', 'RTE'))).toBe(false);
  });

  it('refuses an archive with entries escaping the folder, leaving no task folder', async () => {
    const cache = tmpDir();
    server.files.set('/glue/RTE.zip', buildZip([{ name: 'RTE/train.tsv', data: 'x' }, { name: '../../escaped.txt', data: 'bad' }]));
    await expect(pullGlueTask('RTE', { cacheDir: cache, baseUrl: `${server.base}/glue` })).rejects.toThrow(/outside the target folder/);
    expect(fs.existsSync(path.join(cache, 'glue', 'RTE'))).toBe(false);
    expect(fs.existsSync(path.join(cache, 'escaped.txt'))).toBe(false);
    expect(fs.readdirSync(path.join(cache, 'glue')).filter((f) => f.startsWith('.staging'))).toEqual([]);
    // The bad archive is not kept: the next run downloads afresh.
    expect(fs.readdirSync(path.join(cache, 'glue', '.downloads'))).toEqual([]);
  });

  it('says what an archive without the task files held', async () => {
    const cache = tmpDir();
    server.files.set('/glue/STS-B.zip', buildZip([{ name: 'other/readme.txt', data: 'x' }]));
    await expect(pullGlueTask('STS-B', { cacheDir: cache, baseUrl: `${server.base}/glue` }))
      .rejects.toThrow(/STS-B\.zip: expected train\.tsv, dev\.tsv, test\.tsv in a STS-B\/ folder; the archive holds other/);
  });

  it('--force replaces a task folder with the new download', async () => {
    const cache = tmpDir();
    server.files.set('/glue/CoLA.zip', colaZip());
    await pullGlueTask('CoLA', { cacheDir: cache, baseUrl: `${server.base}/glue` });
    fs.writeFileSync(path.join(cache, 'glue', 'CoLA', 'train.tsv'), 'stale');
    await pullGlueTask('CoLA', { cacheDir: cache, baseUrl: `${server.base}/glue`, force: true });
    expect(fs.readFileSync(path.join(cache, 'glue', 'CoLA', 'train.tsv'), 'utf8')).toBe(COLA_TRAIN);
    expect(fs.readdirSync(path.join(cache, 'glue')).sort()).toEqual(['.downloads', 'CoLA']);
  });

  it('builds MRPC from the Microsoft files and dev ids exactly as the GLUE script does', async () => {
    const cache = tmpDir();
    server.files.set('/m/msr_paraphrase_train.txt', fs.readFileSync(path.join(GLUE, 'MRPC', 'msr_paraphrase_train.txt')));
    server.files.set('/m/msr_paraphrase_test.txt', fs.readFileSync(path.join(GLUE, 'MRPC', 'msr_paraphrase_test.txt')));
    server.files.set('/m/mrpc_dev_ids.tsv', fs.readFileSync(path.join(GLUE, 'MRPC', 'dev_ids.tsv')));
    const result = await pullGlueTask('MRPC', { cacheDir: cache, baseUrl: `${server.base}/m` });
    for (const f of ['train.tsv', 'dev.tsv', 'test.tsv', 'dev_ids.tsv']) {
      expect(fs.readFileSync(path.join(result.taskDir, f)).equals(fs.readFileSync(path.join(GLUE, 'MRPC', f))), f).toBe(true);
    }
    expect(readGlueSplit('MRPC', 'dev', result.root).examples).toHaveLength(408);
  });
});
