import * as fs from 'node:fs';
import * as path from 'node:path';
import { ModtuneError } from '../errors.js';

export interface DownloadProgress {
  url: string;
  /** Bytes on disk so far (including a resumed part). */
  done: number;
  /** Total size when the server says it, else undefined. */
  total?: number;
}

/**
 * Download `url` to `dest`. Bytes go to `dest.part` first and the file appears under its name only
 * once complete; an interrupted download resumes from the `.part` with an HTTP Range request (a
 * server that ignores it sends the whole file again). Returns the bytes written in total.
 */
export async function downloadFile(url: string, dest: string, opts: DownloadOptions = {}): Promise<number> {
  // A connection that goes quiet is dropped rather than waited on forever; the part stays for a resume.
  const idle = new AbortController();
  const idleMs = opts.idleTimeoutMs ?? 60_000;
  let timer = setTimeout(() => idle.abort(), idleMs);
  const alive = () => {
    clearTimeout(timer);
    timer = setTimeout(() => idle.abort(), idleMs);
  };
  try {
    return await fetchToFile(url, dest, opts, idle.signal, alive);
  } catch (e) {
    if (idle.signal.aborted) {
      throw new ModtuneError(`download of ${url} stalled (no data for ${idleMs / 1000} s); run the command again to resume`);
    }
    throw e;
  } finally {
    clearTimeout(timer);
  }
}

export interface DownloadOptions {
  onProgress?: (p: DownloadProgress) => void;
  /** Give up when no byte arrives for this long (default 60 s). */
  idleTimeoutMs?: number;
}

async function fetchToFile(url: string, dest: string, opts: DownloadOptions, signal: AbortSignal, alive: () => void): Promise<number> {
  const part = `${dest}.part`;
  fs.mkdirSync(path.dirname(dest), { recursive: true });
  let have = fs.existsSync(part) ? fs.statSync(part).size : 0;
  let response: Response;
  try {
    response = await fetch(url, { headers: have > 0 ? { Range: `bytes=${have}-` } : {}, redirect: 'follow', signal });
  } catch (e) {
    throw new ModtuneError(`download of ${url} failed: ${causeMessage(e)}; run the command again to resume`);
  }
  alive();
  if (response.status === 416 && have > 0) {
    // The part already holds every byte (or is longer than the file): check the total the server gives.
    const total = Number(/\/(\d+)$/.exec(response.headers.get('content-range') ?? '')?.[1]);
    await response.body?.cancel();
    if (total === have) {
      fs.renameSync(part, dest);
      return have;
    }
    fs.rmSync(part, { force: true });
    return fetchToFile(url, dest, opts, signal, alive);
  }
  if (response.status !== 200 && response.status !== 206) {
    await response.body?.cancel();
    throw new ModtuneError(`download of ${url} failed: HTTP ${response.status} ${response.statusText}`);
  }
  let total: number | undefined;
  const length = Number(response.headers.get('content-length') ?? NaN);
  if (response.status === 206) {
    const range = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(response.headers.get('content-range') ?? '');
    if (!range || Number(range[1]) !== have) {
      await response.body?.cancel();
      fs.rmSync(part, { force: true });
      return fetchToFile(url, dest, opts, signal, alive);
    }
    total = range[3] === '*' ? undefined : Number(range[3]);
  } else {
    have = 0; // a full response: start the part over
    total = Number.isFinite(length) ? length : undefined;
  }
  const fd = fs.openSync(part, have > 0 ? 'a' : 'w');
  try {
    opts.onProgress?.({ url, done: have, total });
    if (!response.body) throw new ModtuneError(`download of ${url} failed: empty response`);
    const reader = response.body.getReader();
    for (;;) {
      let chunk: ReadableStreamReadResult<Uint8Array>;
      try {
        chunk = await reader.read();
      } catch (e) {
        throw new ModtuneError(`download of ${url} interrupted after ${have} bytes: ${causeMessage(e)}; run the command again to resume`);
      }
      if (chunk.done) break;
      alive();
      let off = 0;
      while (off < chunk.value.byteLength) off += fs.writeSync(fd, chunk.value, off, chunk.value.byteLength - off);
      have += chunk.value.byteLength;
      opts.onProgress?.({ url, done: have, total });
    }
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  if (total !== undefined && have !== total) {
    throw new ModtuneError(`download of ${url} stopped at ${have} of ${total} bytes; run the command again to resume`);
  }
  fs.renameSync(part, dest);
  return have;
}

function causeMessage(e: unknown): string {
  const err = e as Error & { cause?: Error };
  return err.cause?.message ? `${err.message} (${err.cause.message})` : String(err?.message ?? e);
}
