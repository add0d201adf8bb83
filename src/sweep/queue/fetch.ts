/**
 * A worker's copy of a job's base model or tokenizer: read from a path it can reach or downloaded
 * from an http(s) URL, and used only when its sha256 is the one the job names. Downloads are kept
 * under the worker's folder by sha256, so each file is fetched once.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ModtuneError } from '../../errors.js';
import { sha256File } from '../../onnx/hash.js';
import type { FileRef } from './job.js';

/** Hashes of local files already checked, by path, size and mtime. */
const checked = new Map<string, string>();

function hashOf(file: string): string {
  const st = fs.statSync(file);
  const key = `${file}|${st.size}|${st.mtimeMs}`;
  let h = checked.get(key);
  if (!h) checked.set(key, (h = sha256File(file)));
  return h;
}

export async function fetchVerified(ref: FileRef, cacheDir: string, what: string): Promise<string> {
  if (!/^[0-9a-f]{64}$/.test(ref.sha256)) throw new ModtuneError(`${what}: the job names no valid sha256 ('${ref.sha256}')`);
  const name = path.basename(ref.name).replace(/[^A-Za-z0-9._-]/g, '_') || 'file';
  if (!/^https?:\/\//i.test(ref.source)) {
    if (!fs.existsSync(ref.source)) {
      throw new ModtuneError(`${what} ${ref.source} is not on this worker; start the sweep with an http URL this worker can reach (--model-url/--tokenizer-url), or give the worker the file (modtune worker --model FILE)`);
    }
    const h = hashOf(ref.source);
    if (h !== ref.sha256) throw new ModtuneError(`${what} ${ref.source} on this worker has sha256 ${h.slice(0, 12)}…, the job wants ${ref.sha256.slice(0, 12)}…`);
    return ref.source;
  }
  const dest = path.join(cacheDir, `${ref.sha256.slice(0, 16)}-${name}`);
  if (fs.existsSync(dest)) return dest; // renamed into place only after its hash checked out
  fs.mkdirSync(cacheDir, { recursive: true });
  const tmp = `${dest}.part-${process.pid}`;
  try {
    const res = await fetch(ref.source, { signal: AbortSignal.timeout(10 * 60_000) });
    if (!res.ok || !res.body) throw new ModtuneError(`${what}: GET ${ref.source} answered ${res.status} ${res.statusText}`);
    await pipeline(Readable.fromWeb(res.body as import('node:stream/web').ReadableStream), fs.createWriteStream(tmp));
    const h = sha256File(tmp);
    if (h !== ref.sha256) throw new ModtuneError(`${what}: ${ref.source} has sha256 ${h.slice(0, 12)}…, the job wants ${ref.sha256.slice(0, 12)}…; refusing it`);
    fs.renameSync(tmp, dest);
    return dest;
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    if (e instanceof ModtuneError) throw e;
    throw new ModtuneError(`${what}: cannot fetch ${ref.source}: ${(e as Error).message}`);
  }
}
