/**
 * The pre-training corpus: files or folders of `.txt` / `.txt.gz`, one paragraph (or document) per
 * line, a blank line between documents. Files are streamed (gunzip on the fly) and never held whole;
 * a line is handed out in pieces of at most MAX_PIECE characters, so a file with one enormous line
 * costs no more memory than any other.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { ModtuneError } from '../errors.js';

/** Longest piece of a line handed to the tokenizer at once (cut at a space when there is one). */
export const MAX_PIECE = 64 * 1024;

export interface CorpusFile {
  path: string;
  size: number;
  sha256: string;
}

const TEXT_FILE = /\.txt(\.gz)?$/;

/** The corpus files under `paths` (files as given, folders searched recursively), sorted, with content hashes. */
export function listCorpus(paths: string[]): CorpusFile[] {
  if (paths.length === 0) throw new ModtuneError('no corpus given: pass --corpus PATH (files or folders of .txt / .txt.gz)');
  const found = new Set<string>();
  const walk = (p: string, given: boolean) => {
    let st: fs.Stats;
    try {
      st = fs.statSync(p);
    } catch {
      throw new ModtuneError(`--corpus ${p}: no such file or folder`);
    }
    if (st.isDirectory()) {
      for (const name of fs.readdirSync(p).sort()) walk(path.join(p, name), false);
    } else if (st.isFile()) {
      if (TEXT_FILE.test(p)) found.add(path.resolve(p));
      else if (given) throw new ModtuneError(`--corpus ${p}: expected a .txt or .txt.gz file`);
    } else if (given) {
      throw new ModtuneError(`--corpus ${p}: not a regular file or folder`);
    }
  };
  for (const p of paths) walk(p, true);
  const files = [...found].sort();
  if (files.length === 0) throw new ModtuneError(`--corpus ${paths.join(' ')}: no .txt or .txt.gz files found`);
  return files.map((f) => ({ path: f, size: fs.statSync(f).size, sha256: sha256File(f) }));
}

function sha256File(file: string): string {
  const h = crypto.createHash('sha256');
  const fd = fs.openSync(file, 'r');
  try {
    const buf = Buffer.allocUnsafe(1 << 20);
    for (;;) {
      const n = fs.readSync(fd, buf, 0, buf.length, null);
      if (n === 0) break;
      h.update(buf.subarray(0, n));
    }
  } finally {
    fs.closeSync(fd);
  }
  return h.digest('hex');
}

/** What a corpus file yields: a piece of a paragraph, or the end of a paragraph / document. */
export type CorpusEvent = { kind: 'text'; text: string } | { kind: 'end-paragraph' } | { kind: 'end-document' };

/** Why a file was not read. */
export class UnreadableCorpusFile extends ModtuneError {
  constructor(readonly file: string, why: string) {
    super(`${file}: ${why}`);
    this.name = 'UnreadableCorpusFile';
  }
}

/**
 * Stream one corpus file as paragraph pieces and boundaries. A NUL byte (a binary file) or bytes that
 * are not UTF-8 make the file unreadable (`UnreadableCorpusFile`), found before anything of it is used
 * when `check` runs first (see `checkCorpusFile`).
 */
export async function* readCorpusFile(file: string): AsyncGenerator<CorpusEvent> {
  const decoder = new TextDecoder('utf-8', { fatal: true });
  let line = '';
  let blankRun = false;
  let offset = 0;
  const source = fs.createReadStream(file);
  const stream = file.endsWith('.gz') ? source.pipe(zlib.createGunzip()) : source;
  const flushPiece = function* (final: boolean): Generator<CorpusEvent> {
    // Emit whole pieces while the line is long; the rest waits for more text or the line end.
    while (line.length > MAX_PIECE || (final && line.length > 0)) {
      let cut = line.length;
      if (line.length > MAX_PIECE) {
        const space = line.lastIndexOf(' ', MAX_PIECE);
        cut = space > MAX_PIECE / 2 ? space + 1 : MAX_PIECE;
      }
      yield { kind: 'text', text: line.slice(0, cut) };
      line = line.slice(cut);
    }
  };
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      if (chunk.includes(0)) throw new UnreadableCorpusFile(file, `a NUL byte near byte ${offset + chunk.indexOf(0)}: a binary file, not text`);
      let text: string;
      try {
        text = decoder.decode(chunk, { stream: true });
      } catch {
        throw new UnreadableCorpusFile(file, `not UTF-8 text (invalid bytes near byte ${offset})`);
      }
      offset += chunk.length;
      let start = 0;
      for (;;) {
        const nl = text.indexOf('\n', start);
        if (nl < 0) {
          line += text.slice(start);
          yield* flushPiece(false);
          break;
        }
        line += text.slice(start, nl);
        start = nl + 1;
        if (line.trim().length === 0) {
          line = '';
          if (!blankRun) yield { kind: 'end-document' };
          blankRun = true;
          continue;
        }
        blankRun = false;
        yield* flushPiece(true);
        yield { kind: 'end-paragraph' };
      }
    }
    try {
      line += decoder.decode();
    } catch {
      throw new UnreadableCorpusFile(file, 'not UTF-8 text (the file ends inside a character)');
    }
  } catch (e) {
    if (e instanceof ModtuneError) throw e;
    const err = e as NodeJS.ErrnoException;
    if (err.code === 'Z_DATA_ERROR' || err.code === 'Z_BUF_ERROR') throw new UnreadableCorpusFile(file, `not a valid gzip file (${err.message})`);
    throw new UnreadableCorpusFile(file, err.message);
  }
  if (line.trim().length > 0) {
    yield* flushPiece(true);
    yield { kind: 'end-paragraph' };
  }
  yield { kind: 'end-document' };
}
