import * as fs from 'node:fs';
import * as path from 'node:path';
import { ModtuneError } from '../errors.js';
import { downloadFile as downloadChecked } from '../hub/download.js';

export interface DownloadProgress {
  url: string;
  /** Bytes on disk so far (including a resumed part). */
  done: number;
  /** Total size when the server says it, else undefined. */
  total?: number;
}

export interface DownloadOptions {
  onProgress?: (p: DownloadProgress) => void;
  /** Give up when no byte arrives for this long (default 60 s). */
  idleTimeoutMs?: number;
  /** Refuse a file bigger than this (default MAX_GLUE_DOWNLOAD_BYTES). */
  maxBytes?: number;
  /** Checks the complete file before it is kept (see hub/download.ts); a refused file is deleted. */
  validate?: (file: string) => void;
}

/** The biggest official GLUE archive (MNLI) is 300 MB; anything ten times that is not GLUE data. */
export const MAX_GLUE_DOWNLOAD_BYTES = 3 * 2 ** 30;

/**
 * Download `url` to `dest` with the same checks as a Hub download (one implementation: hub/download.ts):
 * bytes go to `dest.part` and the file appears under its name only once complete and checked; an
 * interrupted download resumes with a Range request guarded by If-Range. Returns the bytes written.
 */
export async function downloadFile(url: string, dest: string, opts: DownloadOptions = {}): Promise<number> {
  const label = `download of ${url}`;
  fs.mkdirSync(path.dirname(dest), { recursive: true });
  const result = await downloadChecked(url, dest, {
    label,
    retries: 0,
    idleTimeoutMs: opts.idleTimeoutMs,
    maxBytes: opts.maxBytes ?? MAX_GLUE_DOWNLOAD_BYTES,
    validate: opts.validate,
    onStart: ({ total, resumeFrom }) => opts.onProgress?.({ url, done: resumeFrom, total }),
    onData: (done, total) => opts.onProgress?.({ url, done, total }),
  }).catch((e: unknown) => {
    // The one attempt failed on the network: say how to go on.
    if (e instanceof ModtuneError && /download failed after/.test(e.message) && !/resumes from there/.test(e.message)) throw new ModtuneError(`${e.message}; run the command again to resume`);
    throw e;
  });
  if (result.status === 'missing') throw new ModtuneError(`${label} failed: HTTP 404 Not Found`);
  return result.bytes;
}
