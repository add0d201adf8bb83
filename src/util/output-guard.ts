/**
 * What a command may replace. `--force` replaces only what the command itself makes: a folder
 * holding its marker file (a run's `config.json`, an artifacts folder's `manifest.json`, a delta's
 * `delta.json`) with contents that show modtune wrote it, or a model file the command wrote. Never
 * a folder that is, or holds, one of the command's own inputs; never an arbitrary non-empty folder
 * or file. Every command that writes an output goes through here, so the rule lives in one place.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ModtuneError } from '../errors.js';

/** A file or folder the command reads; `what` names it in messages ("the model", "the data"). */
export interface GuardInput {
  path: string;
  what: string;
}

/** The kind of folder a command writes, recognised by its marker file. */
export interface FolderKind {
  /** "a run folder", "an artifacts folder", "a delta folder". */
  name: string;
  /** The file that marks it: `config.json`, `manifest.json`, `delta.json`. */
  marker: string;
  /** Whether the marker's text shows that modtune wrote the folder (not someone's own config.json). */
  recognise: (markerText: string) => boolean;
  /**
   * A folder without its marker whose entries all pass this test is a partial output of the
   * command (stopped before the marker was written): it may be replaced without --force. Only
   * consulted when `partialProof` (e.g. the command's lock file) is among the entries.
   */
  partialEntry?: (entry: string) => boolean;
  partialProof?: string;
}

export interface FolderCheckOptions {
  /** The flag that named the folder, for messages (default --out). */
  flag?: string;
  force?: boolean;
  inputs?: GuardInput[];
  /** Advice before "pass --force to replace it", e.g. "pass --resume to continue it, ". */
  hint?: string;
}

/**
 * What is at an output folder: nothing (absent or empty), a complete output of the command (`ours`,
 * replaced only with --force) or a partial one (`partial`, replaced without asking).
 */
export type FolderState = 'absent' | 'empty' | 'ours' | 'partial';

/**
 * Check that `out` may be written as a folder of `kind`; throws a one-line ModtuneError naming the
 * path and what was expected otherwise. Returns what is there now; the caller replaces an `ours` or
 * `partial` folder (see `clearFolder`).
 */
export function checkOutputFolder(out: string, kind: FolderKind, o: FolderCheckOptions = {}): FolderState {
  const flag = o.flag ?? '--out';
  checkNotInput(out, o.inputs ?? [], flag, 'folder');
  let st: fs.Stats;
  try {
    st = fs.statSync(out);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return 'absent';
    throw new ModtuneError(`${flag} ${out}: cannot read it (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  if (!st.isDirectory()) throw new ModtuneError(`${flag} ${out} exists and is not a folder; expected ${kind.name} or a new path`);
  let entries: string[];
  try {
    entries = fs.readdirSync(out);
  } catch (e) {
    throw new ModtuneError(`${flag} ${out}: cannot list the folder (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  if (entries.length === 0) return 'empty';
  if (isOurFolder(out, kind)) {
    if (o.force) return 'ours';
    throw new ModtuneError(`${flag} ${out} holds ${kind.name}; ${o.hint ?? ''}pass --force to replace it, or choose another ${flag}`);
  }
  if (kind.partialEntry && kind.partialProof && !entries.includes(kind.marker) && entries.includes(kind.partialProof) && entries.every(kind.partialEntry)) {
    return 'partial';
  }
  throw new ModtuneError(
    `${flag} ${out} is not empty and is not ${kind.name} (no ${kind.marker} written by modtune); choose another ${flag} (--force replaces only ${kind.name})`,
  );
}

/** Whether `dir` holds `kind`'s marker with contents modtune wrote. */
export function isOurFolder(dir: string, kind: FolderKind): boolean {
  try {
    return kind.recognise(fs.readFileSync(path.join(dir, kind.marker), 'utf8'));
  } catch {
    return false;
  }
}

/** A JSON object with these fields of these types (for `FolderKind.recognise`). */
export function jsonHas(text: string, fields: Record<string, 'string' | 'number' | 'object' | ((v: unknown) => boolean)>): boolean {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return false;
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const obj = v as Record<string, unknown>;
  return Object.entries(fields).every(([k, t]) => (typeof t === 'function' ? t(obj[k]) : typeof obj[k] === t && obj[k] !== null));
}

/** Remove everything in `dir` except the entries `keep` names (the command's own lock, say). */
export function clearFolder(dir: string, keep: string[] = []): void {
  for (const n of fs.readdirSync(dir)) if (!keep.includes(n)) fs.rmSync(path.join(dir, n), { recursive: true, force: true });
}

export interface FileCheckOptions {
  flag?: string;
  force?: boolean;
  inputs?: GuardInput[];
  /** "a model written by modtune merge": what --force may replace. */
  name: string;
  /** Whether the existing file is one the command wrote. */
  recognise: (file: string) => boolean;
  /** Files written beside `out` (external data, a tokenizer copy): never an input either. */
  companions?: string[];
}

/**
 * Check that the file `out` may be written: not one of the inputs (nor any companion file), not a
 * folder, and, when it exists, replaced only with --force and only when the command wrote it.
 * Returns whether a file is there now.
 */
export function checkOutputFile(out: string, o: FileCheckOptions): boolean {
  const flag = o.flag ?? '--out';
  checkOutputFileNotInput(out, o);
  let st: fs.Stats;
  try {
    st = fs.statSync(out);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw new ModtuneError(`${flag} ${out}: cannot read it (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  if (!st.isFile()) throw new ModtuneError(`${flag} ${out} exists and is not a regular file; expected a new file path or ${o.name}`);
  if (!o.recognise(out)) throw new ModtuneError(`${flag} ${out} exists and is not ${o.name}; choose another ${flag} (--force replaces only ${o.name})`);
  if (!o.force) throw new ModtuneError(`${flag} ${out} exists (${o.name}); pass --force to replace it, or choose another ${flag}`);
  return true;
}

/**
 * The first half of `checkOutputFile`, for a command that learns some inputs only later (a base's
 * external data): `out` and its companions are none of the inputs known so far.
 */
export function checkOutputFileNotInput(out: string, o: Pick<FileCheckOptions, 'flag' | 'inputs' | 'companions'>): void {
  for (const f of [out, ...(o.companions ?? [])]) checkNotInput(f, o.inputs ?? [], o.flag ?? '--out', 'file', out);
}

/**
 * Refuse an output that is an input, holds one (a folder replaced would delete it), or (for a
 * file) would be written over one.
 */
function checkNotInput(out: string, inputs: GuardInput[], flag: string, as: 'file' | 'folder', named = out): void {
  const target = realish(out);
  for (const input of inputs) {
    const real = realish(input.path);
    const same = real === target;
    if (same || (as === 'folder' && isInside(target, real))) {
      const where = named === out ? '' : ` (writing ${out})`;
      const relation = same ? `is ${input.what}` : `holds ${input.what} ${input.path}`;
      throw new ModtuneError(`${flag} ${named}${where} ${relation}, an input of this command; choose another ${flag}`);
    }
  }
}

/** `child` lies below `parent` (both absolute and normalised), and is not `parent` itself. */
function isInside(parent: string, child: string): boolean {
  const rel = path.relative(parent, child);
  return rel !== '' && rel !== '..' && !rel.startsWith(`..${path.sep}`) && !path.isAbsolute(rel);
}

/**
 * The path with links resolved as far as it exists (a path not created yet is its nearest existing
 * ancestor's real path plus the rest), so `./out`, a symlink to it and its absolute path compare equal.
 */
export function realish(p: string): string {
  const abs = path.resolve(p);
  let head = abs;
  const rest: string[] = [];
  for (;;) {
    try {
      return path.join(fs.realpathSync(head), ...rest.reverse());
    } catch {
      const parent = path.dirname(head);
      if (parent === head) return abs;
      rest.push(path.basename(head));
      head = parent;
    }
  }
}
