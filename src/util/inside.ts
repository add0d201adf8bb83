/**
 * Paths read from files (a manifest's file names, a model's metadata, ONNX external-data locations,
 * a run's config) are untrusted: such a path must be relative, stay inside its folder after links
 * are resolved, and name a regular file (or folder) — never a FIFO or device, whose reads block or
 * never end. Every reader of such a path goes through here.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ModtuneError } from '../errors.js';

export interface InsideOptions {
  /** Where the path was read from and which field, for messages: `art/manifest.json: field 'masks'`. */
  source: string;
  /** What the path should name (default: a regular file). */
  kind?: 'file' | 'directory';
  /** A missing target is allowed (the caller handles it); its lexical position is still checked. */
  optional?: boolean;
}

/**
 * The absolute path of `rel` inside `folder`, after checking that it is a relative path that does
 * not leave `folder` (also through symbolic links) and names a regular file or folder.
 */
export function resolveInside(folder: string, rel: unknown, opts: InsideOptions): string {
  const { source } = opts;
  const kind = opts.kind ?? 'file';
  if (typeof rel !== 'string' || rel === '') throw new ModtuneError(`${source}: expected a relative path, got ${JSON.stringify(rel)}`);
  if (rel.includes('\0')) throw new ModtuneError(`${source}: path ${JSON.stringify(rel)} contains a NUL character; refused`);
  const base = path.resolve(folder);
  const resolved = path.resolve(base, rel);
  if (path.isAbsolute(rel) || path.win32.isAbsolute(rel) || !isStrictlyInside(base, resolved)) {
    throw new ModtuneError(`${source}: path ${JSON.stringify(rel)} leaves its folder ${base}; only relative paths inside it are allowed`);
  }
  let real: string;
  try {
    real = fs.realpathSync(resolved);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT' && opts.optional) return resolved;
    throw new ModtuneError(`${source}: ${resolved} not found (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  if (!isStrictlyInside(fs.realpathSync(base), real)) {
    throw new ModtuneError(`${source}: path ${JSON.stringify(rel)} links outside its folder ${base} (to ${real}); refused`);
  }
  checkKind(resolved, fs.statSync(real), kind, source);
  return resolved;
}

/** Refuse anything but a regular file (or folder): FIFOs, sockets and devices would block or never end. */
export function checkKind(file: string, st: fs.Stats, kind: 'file' | 'directory', source: string): void {
  if (kind === 'file' && st.isFile()) return;
  if (kind === 'directory' && st.isDirectory()) return;
  const what = st.isFIFO() ? 'a FIFO' : st.isCharacterDevice() || st.isBlockDevice() ? 'a device' : st.isSocket() ? 'a socket' : st.isDirectory() ? 'a folder' : 'not a regular file';
  throw new ModtuneError(`${source}: ${file} is ${what}, expected a ${kind === 'file' ? 'regular file' : 'folder'}; refused`);
}

/** `child` lies below `parent` (both absolute, normalised), and is not `parent` itself. */
export function isStrictlyInside(parent: string, child: string): boolean {
  const rel = path.relative(parent, child);
  return rel !== '' && !rel.startsWith(`..${path.sep}`) && rel !== '..' && !path.isAbsolute(rel);
}
