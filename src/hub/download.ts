import * as fs from 'node:fs';
import { ModtuneError } from '../errors.js';
import { VERSION } from '../version.js';

export interface DownloadOptions {
  /** Sent as `Authorization: Bearer <token>`. */
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
}

export type DownloadResult = { status: 'downloaded'; bytes: number; resumedFrom: number } | { status: 'missing'; url: string };

/** An HTTP failure worth retrying (or not), kept apart from user-facing errors until the end. */
class TransientError extends Error {}

/**
 * Download `url` to `dest` through `dest.part`: a failed transfer leaves the part file, and the next
 * attempt (or the next run) continues with an HTTP Range request. A server that ignores the Range
 * sends the whole file with 200, which then simply overwrites the part. The final size is checked
 * against Content-Length / Content-Range before the part is renamed into place, so `dest` only ever
 * exists complete. 404 is reported as `missing` for the caller to judge.
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
    `${opts.label}: download failed after ${retries + 1} attempts (${(lastError as Error).message})` +
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

async function attemptDownload(url: string, dest: string, part: string, opts: DownloadOptions): Promise<DownloadResult> {
  let offset = fileSize(part);
  const headers: Record<string, string> = {
    'User-Agent': `modtune/${VERSION}`,
    // Byte ranges and sizes must refer to the file itself, not to a compressed transfer.
    'Accept-Encoding': 'identity',
  };
  if (opts.token) headers.Authorization = `Bearer ${opts.token}`;
  if (offset > 0) headers.Range = `bytes=${offset}-`;

  const controller = new AbortController();
  const idleMs = opts.idleTimeoutMs ?? 60_000;
  let idleTimer: NodeJS.Timeout | undefined;
  const armIdle = () => {
    clearTimeout(idleTimer);
    idleTimer = setTimeout(() => controller.abort(new TransientError(`no data for ${idleMs / 1000}s`)), idleMs);
  };

  let res: Response;
  armIdle();
  try {
    res = await fetch(url, { headers, redirect: 'follow', signal: controller.signal });
  } catch (e) {
    clearTimeout(idleTimer);
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
    if (res.status === 416 && offset > 0) {
      // Nothing left after our offset: the part may already hold the whole file.
      const total = parseContentRange(res.headers.get('content-range'))?.total;
      if (total === offset) {
        fs.renameSync(part, dest);
        return { status: 'downloaded', bytes: offset, resumedFrom: offset };
      }
      fs.rmSync(part, { force: true });
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
      if (!range || range.start !== offset) {
        fs.rmSync(part, { force: true });
        throw new TransientError(`the server answered the resume request with bytes from ${range?.start ?? '?'} instead of ${offset}; starting over`);
      }
      total = range.total ?? (length !== undefined ? offset + length : undefined);
    } else {
      // 200: the whole file, whether or not we asked for a range.
      offset = 0;
      total = encoded ? undefined : length;
    }
    opts.onStart?.({ total, resumeFrom: offset });

    const fd = fs.openSync(part, offset > 0 ? 'a' : 'w');
    let done = offset;
    try {
      if (res.body) {
        for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
          armIdle();
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
      fs.closeSync(fd);
    }

    const size = fileSize(part);
    if (total !== undefined && size !== total) {
      if (size > total) {
        fs.rmSync(part, { force: true });
        throw new TransientError(`got ${size} bytes, more than the announced ${total}; starting over`);
      }
      throw new TransientError(`connection closed after ${size} of ${total} bytes`);
    }
    fs.renameSync(part, dest);
    return { status: 'downloaded', bytes: size, resumedFrom: offset };
  } finally {
    clearTimeout(idleTimer);
    // Unread bodies (404, errors) hold the connection open otherwise.
    if (!res.bodyUsed) await res.body?.cancel().catch(() => undefined);
  }
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
