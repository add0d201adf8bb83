import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { pullModel, type PullEvent } from '../../src/hub/pull.js';
import { buildPulledModel } from '../../src/hub/convert.js';
import { repoCacheDir, resolveUrl, validateRepoId, validateRevision } from '../../src/hub/repo.js';
import { parseContentRange } from '../../src/hub/download.js';
import { ModtuneError } from '../../src/errors.js';
import { buildBert, parseHfConfig, toHfConfig, weightsFromModel, writeSafetensors } from '../../src/bert/index.js';
import { encodeModel } from '../../src/onnx/io.js';
import type { Model } from '../../src/onnx/graph.js';
import { tmpDir } from '../helpers/paths.js';
import { FakeHub } from './server.js';

const REPO = 'test-org/tiny-bert';

/** A tiny BERT (with a 2-label head) and its Hugging Face files, written by the test. */
function makeRepoFiles() {
  const config = parseHfConfig({
    model_type: 'bert', vocab_size: 60, hidden_size: 16, num_hidden_layers: 2, num_attention_heads: 2,
    intermediate_size: 32, max_position_embeddings: 32, type_vocab_size: 2,
  }, 'config.json');
  const model = buildBert({ config, numLabels: 2, seed: 11, perturbLayerNorm: true });
  const weights = weightsFromModel(model);
  const dir = tmpDir('modtune-hub-src-');
  const whole = path.join(dir, 'model.safetensors');
  writeSafetensors(whole, weights, { format: 'pt' });
  // The same weights in two shards with an index, as large checkpoints come.
  const names = [...weights.keys()];
  const half = Math.ceil(names.length / 2);
  const shardNames = ['model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors'];
  const weightMap: Record<string, string> = {};
  [names.slice(0, half), names.slice(half)].forEach((group, i) => {
    writeSafetensors(path.join(dir, shardNames[i]!), new Map(group.map((n) => [n, weights.get(n)!])));
    for (const n of group) weightMap[n] = shardNames[i]!;
  });
  return {
    model,
    config: JSON.stringify({ ...toHfConfig({ ...config, numLabels: 2 }), architectures: ['BertForSequenceClassification'] }),
    safetensors: fs.readFileSync(whole),
    shards: shardNames.map((n) => [n, fs.readFileSync(path.join(dir, n))] as const),
    index: JSON.stringify({ metadata: { total_size: 0 }, weight_map: weightMap }),
    vocab: Array.from({ length: 60 }, (_, i) => `tok${i}`).join('\n') + '\n',
  };
}

const repoFiles = makeRepoFiles();

let hub: FakeHub;
let cache: string;
beforeEach(async () => {
  hub = new FakeHub();
  await hub.start();
  cache = tmpDir('modtune-cache-');
  vi.stubEnv('HF_TOKEN', '');
  vi.stubEnv('HF_ENDPOINT', '');
  vi.stubEnv('MODTUNE_CACHE', '');
});
afterEach(async () => {
  vi.unstubAllEnvs();
  await hub.stop();
});

/** The usual repo: config, single-file weights, vocab.txt, no tokenizer.json. */
function serveStandard(revision = 'main') {
  hub.serve(REPO, revision, 'config.json', repoFiles.config);
  hub.serve(REPO, revision, 'model.safetensors', repoFiles.safetensors);
  hub.serve(REPO, revision, 'vocab.txt', repoFiles.vocab);
}

const pull = (opts: Parameters<typeof pullModel>[1] = {}) => pullModel(REPO, { endpoint: hub.url, cacheDir: cache, retryDelayMs: 0, ...opts });

async function logits(model: Model | Uint8Array): Promise<number[]> {
  const s = await ort.InferenceSession.create(model instanceof Uint8Array ? model : encodeModel(model));
  const t = (v: number[]) => new ort.Tensor('int64', BigInt64Array.from(v.map(BigInt)), [2, 4]);
  const out = await s.run({ input_ids: t([2, 7, 9, 3, 2, 5, 3, 0]), attention_mask: t([1, 1, 1, 1, 1, 1, 1, 0]), token_type_ids: t([0, 0, 0, 0, 0, 0, 0, 0]) });
  const data = Array.from(out.logits!.data as Float32Array);
  await s.release();
  return data;
}

describe('repo ids and cache layout', () => {
  it('accepts Hub ids and maps them into <cache>/hub/<ns>--<name>/<revision>/', () => {
    for (const id of ['bert-base-uncased', 'prajjwal1/bert-tiny', 'google/bert_uncased_L-2_H-128_A-2', 'a', 'org/m.v2']) expect(validateRepoId(id)).toBe(id);
    expect(repoCacheDir('/c', 'prajjwal1/bert-tiny', 'main')).toBe(path.resolve('/c/hub/prajjwal1--bert-tiny/main'));
    expect(repoCacheDir('/c', 'x', 'refs/pr/1')).toBe(path.resolve('/c/hub/x/refs--pr--1'));
    expect(resolveUrl('http://h/', 'a/b', 'refs/pr/1', 'config.json')).toBe('http://h/a/b/resolve/refs%2Fpr%2F1/config.json');
  });

  it('refuses ids and revisions that could leave the cache', () => {
    for (const id of ['', '..', '../etc', 'a/../b', '/abs/path', 'a/b/c', 'C:\\x', 'a\\b', 'a--b', '.hidden', 'x..y', 'a/', 'name-']) {
      expect(() => validateRepoId(id), id).toThrow(ModtuneError);
    }
    expect(() => validateRepoId('../etc')).toThrow(/invalid repo id '\.\.\/etc'/);
    for (const rev of ['..', 'a/../b', '/abs', 'a//b', 'x y', 'a--b']) expect(() => validateRevision(rev), rev).toThrow(ModtuneError);
  });

  it('parses Content-Range', () => {
    expect(parseContentRange('bytes 100-199/1000')).toEqual({ start: 100, end: 199, total: 1000 });
    expect(parseContentRange('bytes */1000')).toEqual({ start: undefined, end: undefined, total: 1000 });
    expect(parseContentRange('bytes 0-9/*')).toEqual({ start: 0, end: 9, total: undefined });
    expect(parseContentRange('items 1-2/3')).toBeUndefined();
  });
});

describe('pullModel', () => {
  it('downloads config, weights and vocab into the cache; a 404 for tokenizer.json is fine', async () => {
    serveStandard();
    const events: PullEvent[] = [];
    const r = await pull({ onProgress: (e) => events.push(e) });
    expect(r.dir).toBe(path.join(cache, 'hub', 'test-org--tiny-bert', 'main'));
    expect(r.files).toEqual(['config.json', 'model.safetensors', 'vocab.txt']);
    expect(fs.readFileSync(path.join(r.dir, 'model.safetensors')).equals(repoFiles.safetensors)).toBe(true);
    expect(fs.readFileSync(path.join(r.dir, 'vocab.txt'), 'utf8')).toBe(repoFiles.vocab);
    expect(fs.existsSync(path.join(r.dir, 'tokenizer.json'))).toBe(false);
    expect(fs.readdirSync(r.dir).filter((f) => f.endsWith('.part'))).toEqual([]);
    expect(hub.requests.map((q) => q.path)).toEqual([
      `/${REPO}/resolve/main/config.json`, `/${REPO}/resolve/main/model.safetensors`,
      `/${REPO}/resolve/main/tokenizer.json`, `/${REPO}/resolve/main/vocab.txt`,
    ]);
    expect(events.filter((e) => e.kind === 'missing')).toEqual([{ file: 'tokenizer.json', kind: 'missing' }]);
    const last = events.filter((e) => e.file === 'model.safetensors' && e.kind === 'progress').pop();
    expect(last).toEqual({ file: 'model.safetensors', kind: 'progress', done: repoFiles.safetensors.byteLength, total: repoFiles.safetensors.byteLength });
    // No token configured: no Authorization header.
    expect(hub.requests.every((q) => q.authorization === undefined)).toBe(true);
  });

  it('a second pull is served from the cache without any request', async () => {
    serveStandard();
    await pull();
    const before = hub.requests.length;
    const events: PullEvent[] = [];
    const r = await pull({ onProgress: (e) => events.push(e) });
    expect(hub.requests.length).toBe(before);
    expect(r.files).toEqual(['config.json', 'model.safetensors', 'vocab.txt']);
    expect(events.map((e) => e.kind)).toEqual(['cached', 'cached', 'cached']);
  });

  it('a complete file is not downloaded again after an interrupted pull', async () => {
    serveStandard();
    hub.statuses.set(`/${REPO}/resolve/main/vocab.txt`, 500);
    await expect(pull({ retries: 0 })).rejects.toThrow(/vocab\.txt: download failed after 1 attempt \(HTTP 500/);
    hub.statuses.clear();
    hub.requests.length = 0;
    await pull();
    expect(hub.requests.map((q) => q.path.split('/').pop())).toEqual(['tokenizer.json', 'vocab.txt']);
  });

  it('follows redirects', async () => {
    serveStandard();
    const cdn = hub.serve('cdn', 'x', 'blob', repoFiles.safetensors);
    const original = `/${REPO}/resolve/main/model.safetensors`;
    hub.redirects.set(original, cdn);
    hub.files.delete(original);
    const r = await pull();
    expect(fs.readFileSync(path.join(r.dir, 'model.safetensors')).equals(repoFiles.safetensors)).toBe(true);
    expect(hub.requests.map((q) => q.path)).toContain(cdn);
  });

  it('resumes an interrupted download with a Range request, byte-identical', async () => {
    serveStandard();
    const file = `/${REPO}/resolve/main/model.safetensors`;
    const cut = 7000;
    hub.cutOnce.set(file, cut);
    const starts: number[] = [];
    const r = await pull({ onProgress: (e) => { if (e.file === 'model.safetensors' && e.kind === 'start') starts.push(e.resumeFrom); } });
    const reqs = hub.requestsFor('model.safetensors');
    expect(reqs.length).toBe(2);
    expect(reqs[0]!.range).toBeUndefined();
    expect(reqs[1]!.range).toBe(`bytes=${cut}-`);
    expect(starts).toEqual([0, cut]);
    expect(fs.readFileSync(path.join(r.dir, 'model.safetensors')).equals(repoFiles.safetensors)).toBe(true);
  });

  it('keeps the part file when retries run out, and the next run resumes from it', async () => {
    serveStandard();
    const cut = 5000;
    hub.cutOnce.set(`/${REPO}/resolve/main/model.safetensors`, cut);
    const err = await pull({ retries: 0 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ModtuneError);
    expect((err as Error).message).toMatch(/model\.safetensors: download failed after 1 attempt \(connection lost after 5000 of \d+ bytes.*5000 bytes are kept in .*model\.safetensors\.part and the next run resumes/);
    const dir = repoCacheDir(cache, REPO, 'main');
    expect(fs.statSync(path.join(dir, 'model.safetensors.part')).size).toBe(cut);
    expect(fs.existsSync(path.join(dir, 'model.safetensors'))).toBe(false);
    hub.requests.length = 0;
    await pull();
    expect(hub.requestsFor('model.safetensors').map((q) => q.range)).toEqual([`bytes=${cut}-`]);
    expect(fs.readFileSync(path.join(dir, 'model.safetensors')).equals(repoFiles.safetensors)).toBe(true);
    expect(fs.existsSync(path.join(dir, 'model.safetensors.part'))).toBe(false);
  });

  it('restarts cleanly when the server ignores the Range header', async () => {
    serveStandard();
    const dir = repoCacheDir(cache, REPO, 'main');
    const cut = 3000;
    hub.cutOnce.set(`/${REPO}/resolve/main/model.safetensors`, cut);
    await expect(pull({ retries: 0 })).rejects.toThrow(/connection lost/);
    // The part's bytes do not even match now: a 200 answer must replace it, not be appended.
    fs.writeFileSync(path.join(dir, 'model.safetensors.part'), Buffer.alloc(cut, 0xee));
    hub.ignoreRange = true;
    hub.requests.length = 0;
    await pull();
    expect(hub.requestsFor('model.safetensors').map((q) => q.range)).toEqual([`bytes=${cut}-`]);
    expect(fs.readFileSync(path.join(dir, 'model.safetensors')).equals(repoFiles.safetensors)).toBe(true);
  });

  it('a part of unknown origin (no ETag recorded) is not resumed blindly', async () => {
    serveStandard();
    const dir = repoCacheDir(cache, REPO, 'main');
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, 'model.safetensors.part'), Buffer.alloc(3000, 0xee));
    await pull();
    expect(hub.requestsFor('model.safetensors').map((q) => q.range)).toEqual([undefined]);
    expect(fs.readFileSync(path.join(dir, 'model.safetensors')).equals(repoFiles.safetensors)).toBe(true);
    expect(fs.readdirSync(dir).filter((f) => f.includes('.part'))).toEqual([]);
  });

  it('finishes a part that already holds the whole file (416 on resume)', async () => {
    serveStandard();
    const dir = repoCacheDir(cache, REPO, 'main');
    const file = `/${REPO}/resolve/main/model.safetensors`;
    hub.cutOnce.set(file, 100);
    await expect(pull({ retries: 0 })).rejects.toThrow(/connection lost/);
    fs.writeFileSync(path.join(dir, 'model.safetensors.part'), repoFiles.safetensors);
    hub.requests.length = 0;
    await pull();
    expect(hub.requestsFor('model.safetensors').map((q) => q.range)).toEqual([`bytes=${repoFiles.safetensors.length}-`]);
    expect(fs.readFileSync(path.join(dir, 'model.safetensors')).equals(repoFiles.safetensors)).toBe(true);
  });

  it('downloads sharded weights listed by model.safetensors.index.json', async () => {
    hub.serve(REPO, 'v1', 'config.json', repoFiles.config);
    hub.serve(REPO, 'v1', 'model.safetensors.index.json', repoFiles.index);
    for (const [name, bytes] of repoFiles.shards) hub.serve(REPO, 'v1', name, bytes);
    hub.serve(REPO, 'v1', 'tokenizer.json', '{"model": {}}');
    const r = await pull({ revision: 'v1' });
    expect(r.dir).toBe(path.join(cache, 'hub', 'test-org--tiny-bert', 'v1'));
    expect(r.files).toEqual(['config.json', 'model.safetensors.index.json', ...repoFiles.shards.map(([n]) => n), 'tokenizer.json']);
    for (const [name, bytes] of repoFiles.shards) expect(fs.readFileSync(path.join(r.dir, name)).equals(bytes)).toBe(true);
  });

  it('refuses shard names in an index that point elsewhere', async () => {
    hub.serve(REPO, 'main', 'config.json', repoFiles.config);
    hub.serve(REPO, 'main', 'model.safetensors.index.json', JSON.stringify({ weight_map: { w: '../../../evil.safetensors' } }));
    await expect(pull()).rejects.toThrow(/model\.safetensors\.index\.json: weight_map: file name "\.\.\/\.\.\/\.\.\/evil\.safetensors" should be a plain file name/);
  });

  it('sends HF_TOKEN as a bearer token and uses HF_ENDPOINT', async () => {
    serveStandard();
    vi.stubEnv('HF_TOKEN', 'hf_secret123');
    vi.stubEnv('HF_ENDPOINT', hub.url);
    vi.stubEnv('MODTUNE_CACHE', cache);
    const r = await pullModel(REPO, { retryDelayMs: 0 });
    expect(r.dir).toBe(path.join(cache, 'hub', 'test-org--tiny-bert', 'main'));
    expect(hub.requests.length).toBe(4);
    expect(hub.requests.every((q) => q.authorization === 'Bearer hf_secret123')).toBe(true);
  });

  it('a 401 says to set HF_TOKEN; with a token, that it was refused', async () => {
    serveStandard();
    hub.statuses.set(`/${REPO}/resolve/main/config.json`, 401);
    const url = `${hub.url}/${REPO}/resolve/main/config.json`;
    await expect(pull()).rejects.toThrow(`${REPO}: config.json: access denied (HTTP 401) for ${url}: the repo may be private or gated, or may not exist; set HF_TOKEN`);
    hub.statuses.set(`/${REPO}/resolve/main/config.json`, 403);
    await expect(pull({ token: 'hf_x' })).rejects.toThrow(/access denied \(HTTP 403\).*the token in HF_TOKEN was refused/);
    // Authorization failures are not retried.
    expect(hub.requestsFor('config.json').length).toBe(2);
  });

  it('a missing config is an error naming the repo and the URL', async () => {
    hub.serve(REPO, 'main', 'model.safetensors', repoFiles.safetensors);
    const url = `${hub.url}/${REPO}/resolve/main/config.json`;
    await expect(pull()).rejects.toThrow(`${REPO}: config.json not found at ${url} (HTTP 404); check the repo id and the revision 'main'`);
  });

  it('missing weights and missing tokenizers are errors', async () => {
    hub.serve(REPO, 'main', 'config.json', repoFiles.config);
    await expect(pull()).rejects.toThrow(/no safetensors weights at revision 'main' \(neither .*model\.safetensors nor .*model\.safetensors\.index\.json exists\)/);
    hub.serve(REPO, 'main', 'model.safetensors', repoFiles.safetensors);
    await expect(pull()).rejects.toThrow(/no tokenizer at revision 'main': neither .*tokenizer\.json nor .*vocab\.txt exists/);
  });

  it('an unreachable endpoint is a clear error', async () => {
    const url = hub.url;
    await hub.stop();
    await expect(pullModel(REPO, { endpoint: url, cacheDir: cache, retries: 1, retryDelayMs: 0 })).rejects.toThrow(/config\.json: download failed after 2 attempts \(cannot reach http:\/\/127\.0\.0\.1:\d+: ECONNREFUSED\)/);
    hub = new FakeHub();
    await hub.start();
  });
});

describe('buildPulledModel', () => {
  it('builds the pulled checkpoint into an ONNX model with the same logits', async () => {
    serveStandard();
    const r = await pull();
    const built = buildPulledModel(r.dir);
    expect(built.files).toEqual([path.join(r.dir, 'model.onnx')]);
    expect(built.numLabels).toBe(2);
    expect(built.newHead).toBe(false);
    const want = await logits(repoFiles.model);
    const got = await logits(new Uint8Array(fs.readFileSync(built.files[0]!)));
    got.forEach((v, i) => expect(v).toBeCloseTo(want[i]!, 5));
  });

  it('starts a new head when asked for a different number of labels', async () => {
    serveStandard();
    const r = await pull();
    const out = path.join(tmpDir(), 'three.onnx');
    const built = buildPulledModel(r.dir, { numLabels: 3, out });
    expect(built.files).toEqual([out]);
    expect(built.newHead).toBe(true);
    expect(built.model.graph.outputs.map((o) => [o.name, o.shape])).toEqual([['logits', ['batch', 3]]]);
  });
});

describe('download integrity', () => {
  const weightsPath = `/${REPO}/resolve/main/model.safetensors`;
  const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

  /** The Hub's LFS answer: a redirect to the CDN naming the file's sha256 and size. */
  function serveLfs(content: Uint8Array, announcedSha = sha256(content)) {
    hub.serve(REPO, 'main', 'config.json', repoFiles.config);
    hub.serve(REPO, 'main', 'vocab.txt', repoFiles.vocab);
    const cdn = hub.serve('cdn', 'x', 'blob', content);
    hub.redirects.set(weightsPath, cdn);
    hub.headers.set(weightsPath, { 'X-Linked-Etag': `"${announcedSha}"`, 'X-Linked-Size': String(content.length) });
    return cdn;
  }

  it('a resumed download sends If-Range with the ETag of what it resumes', async () => {
    serveStandard();
    hub.cutOnce.set(weightsPath, 4000);
    await pull();
    const reqs = hub.requestsFor('model.safetensors');
    expect(reqs.map((q) => q.range)).toEqual([undefined, 'bytes=4000-']);
    expect(reqs[1]!.ifRange).toBe(`"${createHash('sha1').update(repoFiles.safetensors).digest('hex')}"`);
  });

  it('a file changed on the server since the interruption comes back whole, not spliced', async () => {
    serveStandard();
    hub.cutOnce.set(weightsPath, 4000);
    await expect(pull({ retries: 0 })).rejects.toThrow(/connection lost after 4000/);
    const changed = Buffer.from(repoFiles.safetensors);
    changed[changed.length - 1] ^= 0xff;
    hub.serve(REPO, 'main', 'model.safetensors', changed);
    const r = await pull();
    expect(hub.requestsFor('model.safetensors').at(-1)!.range).toBe('bytes=4000-');
    expect(fs.readFileSync(path.join(r.dir, 'model.safetensors')).equals(changed)).toBe(true);
  });

  it('checks every LFS file against the sha256 the Hub announces, and caches nothing that differs', async () => {
    const bad = Buffer.from(repoFiles.safetensors);
    bad[bad.length - 1] ^= 0xff;
    serveLfs(bad, sha256(repoFiles.safetensors));
    await expect(pull()).rejects.toThrow(/model\.safetensors: sha256 [0-9a-f]{12}… does not match the Hub's [0-9a-f]{12}…; the download was corrupted and is discarded/);
    const dir = repoCacheDir(cache, REPO, 'main');
    expect(fs.readdirSync(dir).filter((f) => f.startsWith('model.safetensors'))).toEqual([]);
    serveLfs(repoFiles.safetensors);
    const r = await pull();
    expect(fs.readFileSync(path.join(r.dir, 'model.safetensors')).equals(repoFiles.safetensors)).toBe(true);
  });

  it('a resumed LFS download is checked as a whole', async () => {
    const cdn = serveLfs(repoFiles.safetensors);
    hub.cutOnce.set(cdn, 3000);
    const r = await pull();
    expect(hub.requestsFor('blob').map((q) => q.range)).toEqual([undefined, 'bytes=3000-']);
    expect(fs.readFileSync(path.join(r.dir, 'model.safetensors')).equals(repoFiles.safetensors)).toBe(true);
  });

  it('a body of undeclared length that ends early and does not parse is discarded, never cached', async () => {
    serveStandard();
    const configPath = `/${REPO}/resolve/main/config.json`;
    hub.undeclared.add(configPath);
    hub.shortOnce.set(configPath, 40);
    await expect(pull()).rejects.toThrow(/config\.json: a body of undeclared length that does not parse \(.*\); discarded/);
    const dir = repoCacheDir(cache, REPO, 'main');
    expect(fs.readdirSync(dir).filter((f) => f.startsWith('config.json'))).toEqual([]);
    hub.undeclared.add(weightsPath);
    hub.shortOnce.set(weightsPath, 5000);
    await expect(pull()).rejects.toThrow(/model\.safetensors: a body of undeclared length that does not parse/);
    expect(fs.existsSync(path.join(dir, 'model.safetensors'))).toBe(false);
    const r = await pull();
    expect(fs.readFileSync(path.join(r.dir, 'model.safetensors')).equals(repoFiles.safetensors)).toBe(true);
  });

  it('refuses a file over the size cap, declared or as it arrives', async () => {
    serveStandard();
    await expect(pull({ maxBytes: 4096 })).rejects.toThrow(/model\.safetensors: \d+ bytes, over the 4096-byte download limit; refused/);
    hub.undeclared.add(weightsPath);
    await expect(pull({ maxBytes: 4096 })).rejects.toThrow(/model\.safetensors: the server sent more than the 4096-byte download limit; discarded/);
    const dir = repoCacheDir(cache, REPO, 'main');
    expect(fs.readdirSync(dir).filter((f) => f.startsWith('model.safetensors'))).toEqual([]);
  });

  it('pull --force downloads again and replaces what the cache holds', async () => {
    serveStandard();
    const first = await pull();
    const config = JSON.parse(repoFiles.config);
    hub.serve(REPO, 'main', 'config.json', JSON.stringify({ ...config, hidden_dropout_prob: 0.2 }));
    await pull();
    expect(JSON.parse(fs.readFileSync(path.join(first.dir, 'config.json'), 'utf8')).hidden_dropout_prob).toBe(config.hidden_dropout_prob);
    hub.requests.length = 0;
    await pull({ force: true });
    expect(hub.requestsFor('config.json')).toHaveLength(1);
    expect(JSON.parse(fs.readFileSync(path.join(first.dir, 'config.json'), 'utf8')).hidden_dropout_prob).toBe(0.2);
  });
});
