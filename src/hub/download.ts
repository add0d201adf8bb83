import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import { ModtuneError } from '../errors.js';
import { VERSION } from '../version.js';

export interface DownloadOptions {
  /** Sent as `Authorization: Bearer <token>` (to the first host only, not to a CDN it redirects to). */
  token?: string;
  /** Name for messages (e.g. 'org/model: model.safetensors'). */
  label: string;
  /** Called when the size is known (or not) and as bytes arrive; `done` counts bytes already in the .part file. */
  onStart?: (info: { total?: number; resumeFrom: number }) => void;
  onData?: (done: number, total?: number) => void;
  /** Extra attempts after a network failure, a cut connection or a 5xx/429 (each resumes). Default 3. */
  retries?: number;
  /** Wait before retry n: n × this. Default 1000 ms. */
  retryDelayMs?: number;
  /** Give up on a connection that delivers nothing for this long (then retry). Default 60 s. */
  idleTimeoutMs?: number;
  /** Refuse a file bigger than this, declared or as it arrives. Default MAX_DOWNLOAD_BYTES. */
  maxBytes?: number;
  /**
   * Checks the complete file before it is renamed into place (e.g. that a JSON file parses); throws
   * to refuse it. A refused file is deleted, never cached.
   */
  validate?: (file: string) => void;
}

export type DownloadResult = { status: 'downloaded'; bytes: number; resumedFrom: number; sha256?: string } | { status: 'missing'; url: string };

/** Default size cap of one download: above any checkpoint modtune builds (MAX_PARAMETERS float32) with room for fp64 and archives. */
export const MAX_DOWNLOAD_BYTES = 16 * 2 ** 30;

/** An HTTP failure worth retrying (or not), kept apart from user-facing errors until the end. */
class TransientError extends Error {}

/**
 * What a part file was downloaded against, kept beside it (`<dest>.part.json`): a resume sends the
 * ETag as `If-Range`, so a file that changed on the server comes back whole (200) instead of being
 * spliced onto stale bytes, and an LFS file's sha256 (the Hub's `X-Linked-Etag`) is checked at the end.
 */
interface PartInfo {
  url: string;
  /** Strong ETag of the response that delivered the bytes, or null. */
  etag: string | null;
  /** sha256 of the whole file announced by the Hub for LFS files, or null. */
  sha256: string | null;
}

/**
 * Download `url` to `dest` through `dest.part`: a failed transfer leaves the part file, and the next
 * attempt (or the next run) continues with an HTTP Range request guarded by `If-Range`. A server that
 * ignores the Range, or whose file changed, sends the whole file with 200, which then overwrites the
 * part. Before the part is renamed into place its size is checked against Content-Length /
 * Content-Range / X-Linked-Size, an LFS file's sha256 against the Hub's, and `validate` runs; so
 * `dest` only ever exists complete and checked. 404 is reported as `missing` for the caller to judge.
 */
export async function downloadFile(url: string, dest: string, opts: DownloadOptions): Promise<DownloadResult> {
  const retries = opts.retries ?? 3;
  const delay = opts.retryDelayMs ?? 1000;
  const part = `${dest}.part`;
  let lastError: unknown;
  for (let attempt = 0; attempt <= retries; attempt++) {
    if (attempt > 0 && delay > 0) await new Promise((r) => setTimeout(r, delay * attempt));
    try {
      return await attemptDownload(url, dest, part, opts);
    } catch (e) {
      if (!(e instanceof TransientError)) throw e;
      lastError = e;
    }
  }
  const have = fileSize(part);
  throw new ModtuneError(
    `${opts.label}: download failed after ${retries + 1} attempt${retries ? 's' : ''} (${(lastError as Error).message})` +
      (have > 0 ? `; ${have} bytes are kept in ${part} and the next run resumes from there` : ''),
  );
}

function fileSize(file: string): number {
  try {
    return fs.statSync(file).size;
  } catch {
    return 0;
  }
}

function networkCause(e: unknown): string {
  const err = e as Error & { cause?: { code?: string; message?: string } };
  return err.cause?.code ?? err.cause?.message ?? err.message;
}

function readPartInfo(part: string, url: string): PartInfo | undefined {
  try {
    const info = JSON.parse(fs.readFileSync(`${part}.json`, 'utf8')) as PartInfo;
    return info && info.url === url ? info : undefined;
  } catch {
    return undefined;
  }
}

/** Forget a part file and what it was downloaded against. */
function dropPart(part: string): void {
  fs.rmSync(part, { force: true });
  fs.rmSync(`${part}.json`, { force: true });
}

/** A strong ETag usable in If-Range (weak ones may not be used there), else null. */
function strongEtag(v: string | null): string | null {
  return v && !v.startsWith('W/') ? v : null;
}

/** The Hub names an LFS file's sha256 in X-Linked-Etag (quoted hex). */
function lfsSha256(headers: Headers): string | null {
  const v = headers.get('x-linked-etag');
  const m = v ? /^(?:W\/)?"?([0-9a-f]{64})"?$/.exec(v.trim()) : null;
  return m ? m[1]! : null;
}

function sha256OfFile(file: string): string {
  const hash = crypto.createHash('sha256');
  const fd = fs.openSync(file, 'r');
  try {
    const buf = Buffer.allocUnsafe(1 << 20);
    for (let n; (n = fs.readSync(fd, buf, 0, buf.length, null)) > 0; ) hash.update(buf.subarray(0, n));
  } finally {
    fs.closeSync(fd);
  }
  return hash.digest('hex');
}

const MAX_REDIRECTS = 10;

/**
 * GET with redirects followed by hand, so that the Hub's own answer (X-Linked-Etag, X-Linked-Size on
 * the redirect to its CDN) is seen, and the token is not sent to another host.
 */
async function fetchFollowing(url: string, headers: Record<string, string>, signal: AbortSignal): Promise<{ res: Response; first: Headers }> {
  let current = url;
  let first: Headers | undefined;
  const origin = new URL(url).origin;
  for (let hop = 0; hop <= MAX_REDIRECTS; hop++) {
    const sent = { ...headers };
    if (new URL(current).origin !== origin) delete sent.Authorization;
    const res = await fetch(current, { headers: sent, redirect: 'manual', signal });
    first ??= res.headers;
    const location = res.headers.get('location');
    if (res.status >= 300 && res.status < 400 && location) {
      await res.body?.cancel().catch(() => undefined);
      current = new URL(location, current).href;
      continue;
    }
    return { res, first };
  }
  throw new TransientError(`more than ${MAX_REDIRECTS} redirects`);
}

async function attemptDownload(url: string, dest: string, part: string, opts: DownloadOptions): Promise<DownloadResult> {
  const maxBytes = opts.maxBytes ?? MAX_DOWNLOAD_BYTES;
  let offset = fileSize(part);
  const recorded = offset > 0 ? readPartInfo(part, url) : undefined;
  // Resume only what can be checked: with an ETag for If-Range, or a sha256 verified at the end.
  if (offset > 0 && !recorded?.etag && !recorded?.sha256) {
    dropPart(part);
    offset = 0;
  }
  const headers: Record<string, string> = {
    'User-Agent': `modtune/${VERSION}`,
    // Byte ranges and sizes must refer to the file itself, not to a compressed transfer.
    'Accept-Encoding': 'identity',
  };
  if (opts.token) headers.Authorization = `Bearer ${opts.token}`;
  if (offset > 0) {
    headers.Range = `bytes=${offset}-`;
    if (recorded?.etag) headers['If-Range'] = recorded.etag;
  }

  const controller = new AbortController();
  const idleMs = opts.idleTimeoutMs ?? 60_000;
  let idleTimer: NodeJS.Timeout | undefined;
  const armIdle = () => {
    clearTimeout(idleTimer);
    idleTimer = setTimeout(() => controller.abort(new TransientError(`no data for ${idleMs / 1000}s`)), idleMs);
  };

  let res: Response;
  let first: Headers;
  armIdle();
  try {
    ({ res, first } = await fetchFollowing(url, headers, controller.signal));
  } catch (e) {
    clearTimeout(idleTimer);
    if (e instanceof TransientError) throw e;
    if (controller.signal.aborted) throw controller.signal.reason;
    throw new TransientError(`cannot reach ${new URL(url).origin}: ${networkCause(e)}`);
  }

  try {
    if (res.status === 404) return { status: 'missing', url };
    if (res.status === 401 || res.status === 403) {
      throw new ModtuneError(
        `${opts.label}: access denied (HTTP ${res.status}) for ${url}: ` +
          (opts.token
            ? 'the token in HF_TOKEN was refused or has no access to this repo (gated repos need their terms accepted on the Hub)'
            : 'the repo may be private or gated, or may not exist; set HF_TOKEN to a Hugging Face access token with read access'),
      );
    }
    const sha256 = lfsSha256(first);
    const linkedSize = headerInt(first.get('x-linked-size'));
    if (offset > 0 && recorded?.sha256 && sha256 && recorded.sha256 !== sha256) {
      // The LFS file changed since the part was started: its bytes belong to another file.
      dropPart(part);
      throw new TransientError(`${opts.label} changed on the server since the interrupted download; starting over`);
    }
    if (res.status === 416 && offset > 0) {
      // Nothing left after our offset: the part may already hold the whole file.
      const total = parseContentRange(res.headers.get('content-range'))?.total;
      if (total === offset) return finish(part, dest, offset, offset, recorded?.sha256 ?? sha256, opts);
      dropPart(part);
      throw new TransientError(`the server refused to resume at byte ${offset} (HTTP 416); starting over`);
    }
    if (res.status === 429 || res.status >= 500) throw new TransientError(`HTTP ${res.status} ${res.statusText}`);
    if (res.status !== 200 && res.status !== 206) {
      throw new ModtuneError(`${opts.label}: unexpected HTTP ${res.status} ${res.statusText} for ${url}`);
    }

    let total: number | undefined;
    const length = headerInt(res.headers.get('content-length'));
    const encoded = (res.headers.get('content-encoding') ?? 'identity') !== 'identity';
    if (res.status === 206) {
      const range = parseContentRange(res.headers.get('content-range'));
      if (offset === 0 || !range || range.start !== offset) {
        dropPart(part);
        throw new TransientError(`the server answered the resume request with bytes from ${range?.start ?? '?'} instead of ${offset}; starting over`);
      }
      total = range.total ?? (length !== undefined ? offset + length : undefined);
    } else {
      // 200: the whole file, whether or not we asked for a range (If-Range: it changed).
      offset = 0;
      total = encoded ? undefined : length;
    }
    total ??= linkedSize;
    if (linkedSize !== undefined && total !== linkedSize) {
      dropPart(part);
      throw new ModtuneError(`${opts.label}: the server announces ${total} bytes, the Hub ${linkedSize}; refused`);
    }
    if (total !== undefined && total > maxBytes) {
      dropPart(part);
      throw new ModtuneError(`${opts.label}: ${total} bytes, over the ${maxBytes}-byte download limit; refused`);
    }
    const info: PartInfo = { url, etag: strongEtag(res.headers.get('etag')), sha256: sha256 ?? (offset > 0 ? recorded?.sha256 ?? null : null) };
    if (offset === 0) fs.rmSync(part, { force: true });
    fs.writeFileSync(`${part}.json`, JSON.stringify(info));
    opts.onStart?.({ total, resumeFrom: offset });

    const fd = fs.openSync(part, offset > 0 ? 'a' : 'w');
    let done = offset;
    try {
      if (res.body) {
        for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
          armIdle();
          if (done + chunk.byteLength > maxBytes || (total !== undefined && done + chunk.byteLength > total)) {
            fs.closeSync(fd);
            dropPart(part);
            const limit = total !== undefined && total <= maxBytes ? `the announced ${total}` : `the ${maxBytes}-byte download limit`;
            throw new ModtuneError(`${opts.label}: the server sent more than ${limit}; discarded`);
          }
          let written = 0;
          while (written < chunk.byteLength) written += fs.writeSync(fd, chunk, written, chunk.byteLength - written);
          done += chunk.byteLength;
          opts.onData?.(done, total);
        }
      }
      fs.fsyncSync(fd);
    } catch (e) {
      if (e instanceof ModtuneError) throw e;
      if (controller.signal.aborted && controller.signal.reason instanceof TransientError) throw controller.signal.reason;
      throw new TransientError(`connection lost after ${done} of ${total ?? '?'} bytes (${networkCause(e)})`);
    } finally {
      try {
        fs.closeSync(fd);
      } catch {
        // closed above before discarding
      }
    }

    const size = fileSize(part);
    if (total !== undefined && size !== total) throw new TransientError(`connection closed after ${size} of ${total} bytes`);
    return finish(part, dest, size, offset, info.sha256, opts, total === undefined);
  } finally {
    clearTimeout(idleTimer);
    // Unread bodies (404, errors) hold the connection open otherwise.
    if (!res.bodyUsed) await res.body?.cancel().catch(() => undefined);
  }
}

/** Check a complete part (sha256, validator) and rename it into place; a refused part is deleted. */
function finish(part: string, dest: string, bytes: number, resumedFrom: number, sha256: string | null | undefined, opts: DownloadOptions, undeclared = false): DownloadResult {
  if (sha256) {
    const got = sha256OfFile(part);
    if (got !== sha256) {
      dropPart(part);
      throw new ModtuneError(`${opts.label}: sha256 ${got.slice(0, 12)}… does not match the Hub's ${sha256.slice(0, 12)}…; the download was corrupted and is discarded (run again to download afresh)`);
    }
  }
  if (opts.validate) {
    try {
      opts.validate(part);
    } catch (e) {
      dropPart(part);
      const why = e instanceof Error ? e.message : String(e);
      throw new ModtuneError(`${opts.label}: ${undeclared ? 'a body of undeclared length that ' : 'the download '}does not parse (${why}); discarded`);
    }
  }
  fs.renameSync(part, dest);
  fs.rmSync(`${part}.json`, { force: true });
  return { status: 'downloaded', bytes, resumedFrom, ...(sha256 ? { sha256 } : {}) };
}

function headerInt(v: string | null): number | undefined {
  if (v === null || !/^\d+$/.test(v.trim())) return undefined;
  const n = Number(v.trim());
  return Number.isSafeInteger(n) ? n : undefined;
}

/** 'bytes 100-199/1000' → {start 100, end 199, total 1000}; 'bytes *\/1000' → {total 1000}. */
export function parseContentRange(v: string | null): { start?: number; end?: number; total?: number } | undefined {
  if (!v) return undefined;
  const m = /^bytes\s+(?:(\d+)-(\d+)|\*)\/(\d+|\*)$/.exec(v.trim());
  if (!m) return undefined;
  return {
    start: m[1] !== undefined ? Number(m[1]) : undefined,
    end: m[2] !== undefined ? Number(m[2]) : undefined,
    total: m[3] !== '*' ? Number(m[3]) : undefined,
  };
}
