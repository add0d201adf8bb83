import * as fs from 'node:fs';
import * as path from 'node:path';
import { ModtuneError } from '../errors.js';
import { writeAtomic } from '../onnx/io.js';
import { downloadFile } from './download.js';
import { validatorFor } from './validate.js';
import { DEFAULT_ENDPOINT, DEFAULT_REVISION, defaultCacheDir, repoCacheDir, resolveUrl, validateRepoFileName, validateRepoId, validateRevision } from './repo.js';

export type PullEvent =
  | { file: string; kind: 'cached'; bytes: number }
  | { file: string; kind: 'start'; total?: number; resumeFrom: number }
  | { file: string; kind: 'progress'; done: number; total?: number }
  | { file: string; kind: 'done'; bytes: number }
  /** An optional file the repo does not have (required ones end the pull with an error instead). */
  | { file: string; kind: 'missing' };

export interface PullOptions {
  /** Branch, tag or commit. Default 'main'. */
  revision?: string;
  /** Default: env HF_ENDPOINT, else https://huggingface.co. */
  endpoint?: string;
  /** Default: env HF_TOKEN. */
  token?: string;
  /** Default: env MODTUNE_CACHE, else ~/.cache/modtune. */
  cacheDir?: string;
  onProgress?: (e: PullEvent) => void;
  /** Retries per file after a failed transfer (each resumes). Default 3. */
  retries?: number;
  retryDelayMs?: number;
  idleTimeoutMs?: number;
  /** Download every file again, replacing what the cache holds (and any interrupted part). */
  force?: boolean;
  /** Size cap per file (default MAX_DOWNLOAD_BYTES). */
  maxBytes?: number;
}

export interface PullResult {
  /** The local folder holding the files. */
  dir: string;
  /** Files present in `dir`, in download order. */
  files: string[];
  repoId: string;
  revision: string;
}

/** Written last: its presence means the pull completed, so a rerun makes no request at all. */
const MANIFEST = '.modtune-pull.json';

interface Manifest {
  repoId: string;
  revision: string;
  endpoint: string;
  files: string[];
  missing: string[];
}

/**
 * Download what modtune needs of a Hugging Face model repo into the cache: config.json, the
 * safetensors weights (one file, or an index and its shards), and the tokenizer (tokenizer.json
 * and/or vocab.txt). Files already complete in the cache are not fetched again (unless `force`).
 * Every file is checked before it is cached: its size as declared, an LFS file's sha256 as the Hub
 * announces it, and its format (JSON parses, safetensors header matches the file).
 */
export async function pullModel(repoId: string, opts: PullOptions = {}): Promise<PullResult> {
  validateRepoId(repoId);
  const revision = validateRevision(opts.revision ?? DEFAULT_REVISION);
  const endpoint = opts.endpoint ?? (process.env.HF_ENDPOINT || DEFAULT_ENDPOINT);
  checkEndpoint(endpoint);
  const token = opts.token ?? (process.env.HF_TOKEN || undefined);
  const dir = repoCacheDir(opts.cacheDir ?? defaultCacheDir(), repoId, revision);

  const cached = opts.force ? undefined : readManifest(dir, repoId, revision);
  // A forced pull is complete only when it finishes: until then the old manifest must not vouch for a mix.
  if (opts.force) fs.rmSync(path.join(dir, MANIFEST), { force: true });
  if (cached) {
    for (const file of cached.files) opts.onProgress?.({ file, kind: 'cached', bytes: fs.statSync(path.join(dir, file)).size });
    return { dir, files: cached.files, repoId, revision };
  }
  fs.mkdirSync(dir, { recursive: true });

  const files: string[] = [];
  const missing: string[] = [];
  const fetchFile = async (file: string, required = false): Promise<boolean> => {
    const dest = path.join(dir, file);
    if (opts.force) {
      fs.rmSync(`${dest}.part`, { force: true });
      fs.rmSync(`${dest}.part.json`, { force: true });
    }
    if (!opts.force && fs.existsSync(dest)) {
      opts.onProgress?.({ file, kind: 'cached', bytes: fs.statSync(dest).size });
      files.push(file);
      return true;
    }
    const url = resolveUrl(endpoint, repoId, revision, file);
    const result = await downloadFile(url, dest, {
      token,
      label: `${repoId}: ${file}`,
      retries: opts.retries,
      retryDelayMs: opts.retryDelayMs,
      idleTimeoutMs: opts.idleTimeoutMs,
      maxBytes: opts.maxBytes,
      validate: validatorFor(file),
      onStart: ({ total, resumeFrom }) => opts.onProgress?.({ file, kind: 'start', total, resumeFrom }),
      onData: (done, total) => opts.onProgress?.({ file, kind: 'progress', done, total }),
    });
    if (result.status === 'missing') {
      if (!required) opts.onProgress?.({ file, kind: 'missing' });
      missing.push(file);
      return false;
    }
    opts.onProgress?.({ file, kind: 'done', bytes: result.bytes });
    files.push(file);
    return true;
  };
  const urlOf = (file: string) => resolveUrl(endpoint, repoId, revision, file);

  if (!(await fetchFile('config.json', true))) {
    throw new ModtuneError(`${repoId}: config.json not found at ${urlOf('config.json')} (HTTP 404); check the repo id and the revision '${revision}'`);
  }

  if (!(await fetchFile('model.safetensors'))) {
    const index = 'model.safetensors.index.json';
    if (!(await fetchFile(index))) {
      throw new ModtuneError(
        `${repoId}: no safetensors weights at revision '${revision}' (neither ${urlOf('model.safetensors')} nor ${urlOf(index)} exists); ` +
          'only safetensors checkpoints are supported (convert pytorch_model.bin with Hugging Face tools first)',
      );
    }
    for (const shard of shardsOf(path.join(dir, index), `${repoId}: ${index}`)) {
      if (!(await fetchFile(shard, true))) throw new ModtuneError(`${repoId}: shard ${shard} listed in ${index} not found at ${urlOf(shard)} (HTTP 404)`);
    }
  }

  const hasTokenizerJson = await fetchFile('tokenizer.json');
  const hasVocab = await fetchFile('vocab.txt');
  if (!hasTokenizerJson && !hasVocab) {
    throw new ModtuneError(`${repoId}: no tokenizer at revision '${revision}': neither ${urlOf('tokenizer.json')} nor ${urlOf('vocab.txt')} exists`);
  }

  const manifest: Manifest = { repoId, revision, endpoint, files, missing };
  writeAtomic(path.join(dir, MANIFEST), `${JSON.stringify(manifest, null, 2)}\n`);
  return { dir, files, repoId, revision };
}

function checkEndpoint(endpoint: string): void {
  let u: URL;
  try {
    u = new URL(endpoint);
  } catch {
    throw new ModtuneError(`invalid Hub endpoint '${endpoint}' (from HF_ENDPOINT or --endpoint): expected an http(s) URL`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new ModtuneError(`invalid Hub endpoint '${endpoint}': expected an http(s) URL`);
}

/** The cached pull, if it completed and its files are all still there. */
function readManifest(dir: string, repoId: string, revision: string): Manifest | undefined {
  let m: Manifest;
  try {
    m = JSON.parse(fs.readFileSync(path.join(dir, MANIFEST), 'utf8')) as Manifest;
  } catch {
    return undefined;
  }
  if (m.repoId !== repoId || m.revision !== revision || !Array.isArray(m.files)) return undefined;
  for (const f of m.files) {
    try {
      validateRepoFileName(f, path.join(dir, MANIFEST));
    } catch {
      return undefined;
    }
    if (!fs.existsSync(path.join(dir, f))) return undefined;
  }
  return m;
}

/** Shard file names of a safetensors index, each a plain name in the repo's root, in first-use order. */
function shardsOf(indexFile: string, label: string): string[] {
  let json: unknown;
  try {
    json = JSON.parse(fs.readFileSync(indexFile, 'utf8'));
  } catch (e) {
    fs.rmSync(indexFile, { force: true }); // not kept: a rerun fetches it again
    throw new ModtuneError(`${label}: not valid JSON (${(e as Error).message})`);
  }
  const map = (json as { weight_map?: unknown } | null)?.weight_map;
  if (typeof map !== 'object' || map === null || Array.isArray(map)) {
    throw new ModtuneError(`${label}: field 'weight_map' should be an object mapping tensor names to shard files`);
  }
  const shards = [...new Set(Object.values(map as Record<string, unknown>).map((s) => validateRepoFileName(s, `${label}: weight_map`)))];
  if (!shards.length) throw new ModtuneError(`${label}: 'weight_map' lists no shards`);
  return shards;
}
