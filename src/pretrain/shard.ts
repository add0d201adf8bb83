/**
 * The tokenized corpus, cached: the token ids of every paragraph, in corpus order, as two flat
 * streams (training and held-out), with `[SEP]` between documents. Packing into fixed-length
 * sequences happens when reading, so one cache serves every `--seq-len`.
 *
 * The cache is keyed by the files' content hashes and the tokenizer's fingerprint, written into a
 * temporary folder and renamed into place: a crash or a full disk never leaves a cache that is used.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ModtuneError } from '../errors.js';
import type { BertTokenizer } from '../data/tokenizer.js';
import { writeAtomic } from '../onnx/io.js';
import { listCorpus, readCorpusFile, UnreadableCorpusFile, type CorpusFile } from './corpus.js';

export const SHARD_FORMAT = 'modtune-token-shard';
export const SHARD_VERSION = 1;
/** Share of paragraphs held out for evaluation, chosen by a hash of their text. */
export const HELD_OUT_RATE = 0.005;

export interface ShardMeta {
  format: typeof SHARD_FORMAT;
  version: number;
  key: string;
  tokenizer: string;
  files: Array<{ path: string; sha256: string; size: number; tokens: number }>;
  skipped: Array<{ path: string; reason: string }>;
  tokens: { train: number; heldOut: number };
  paragraphs: { train: number; heldOut: number };
  dtype: 'uint16' | 'uint32';
  seconds: number;
}

export interface TokenShard {
  dir: string;
  meta: ShardMeta;
  train: Uint16Array | Uint32Array;
  heldOut: Uint16Array | Uint32Array;
}

export interface ShardOptions {
  corpus: string[];
  tokenizer: BertTokenizer;
  cacheDir: string;
  log?: (line: string) => void;
  /** Progress over bytes read (compressed size for .gz files). */
  onProgress?: (bytesDone: number, bytesTotal: number, tokens: number) => void;
}

/** Is this paragraph held out? A fixed function of its text: the same split on every machine. */
export function isHeldOut(hash: Buffer): boolean {
  return hash.readUInt32BE(0) / 2 ** 32 < HELD_OUT_RATE;
}

function cacheKey(files: CorpusFile[], tokenizer: BertTokenizer): string {
  const h = crypto.createHash('sha256');
  h.update(JSON.stringify({ format: SHARD_FORMAT, version: SHARD_VERSION, heldOut: HELD_OUT_RATE, tokenizer: tokenizer.fingerprint, files: files.map((f) => f.sha256) }));
  return h.digest('hex');
}

/** Grows a typed array of token ids without holding a JS number[] of the whole stream. */
class IdStream {
  private buf: Uint32Array = new Uint32Array(1 << 16);
  length = 0;
  push(ids: ArrayLike<number>): void {
    if (this.length + ids.length > this.buf.length) {
      let size = this.buf.length * 2;
      while (size < this.length + ids.length) size *= 2;
      const next = new Uint32Array(size);
      next.set(this.buf.subarray(0, this.length));
      this.buf = next;
    }
    for (let i = 0; i < ids.length; i++) this.buf[this.length + i] = ids[i]!;
    this.length += ids.length;
  }
  last(): number | undefined {
    return this.length ? this.buf[this.length - 1] : undefined;
  }
  view(): Uint32Array {
    return this.buf.subarray(0, this.length);
  }
}

/** The cached token shard of a corpus, tokenizing it first when no cache for it exists. */
export async function loadOrBuildShard(opts: ShardOptions): Promise<TokenShard> {
  const files = listCorpus(opts.corpus);
  const key = cacheKey(files, opts.tokenizer);
  const dir = path.join(opts.cacheDir, 'corpus', key.slice(0, 24));
  const existing = readShard(dir);
  if (existing && existing.meta.key === key) {
    opts.log?.(`corpus: ${files.length} files, ${existing.meta.tokens.train.toLocaleString('en-US')} training tokens (cached in ${dir})`);
    return existing;
  }
  return buildShard(files, key, dir, opts);
}

async function buildShard(files: CorpusFile[], key: string, dir: string, opts: ShardOptions): Promise<TokenShard> {
  const t0 = performance.now();
  const tok = opts.tokenizer;
  const train = new IdStream();
  const heldOut = new IdStream();
  const meta: ShardMeta = {
    format: SHARD_FORMAT, version: SHARD_VERSION, key, tokenizer: tok.fingerprint, files: [], skipped: [],
    tokens: { train: 0, heldOut: 0 }, paragraphs: { train: 0, heldOut: 0 }, dtype: tok.vocabSize <= 65536 ? 'uint16' : 'uint32', seconds: 0,
  };
  const totalBytes = files.reduce((s, f) => s + f.size, 0);
  let bytesDone = 0;
  for (const file of files) {
    // A file is tokenized whole before any of it joins the streams: an unreadable file is skipped cleanly.
    const fileTrain = new IdStream();
    const fileHeld = new IdStream();
    let paragraph: number[] = [];
    let hash = crypto.createHash('sha256');
    let paragraphs = { train: 0, heldOut: 0 };
    try {
      for await (const ev of readCorpusFile(file.path)) {
        if (ev.kind === 'text') {
          hash.update(ev.text);
          const ids = tok.encodeIds(ev.text);
          for (const id of ids) paragraph.push(id);
        } else if (ev.kind === 'end-paragraph') {
          if (paragraph.length) {
            if (isHeldOut(hash.digest())) {
              fileHeld.push(paragraph);
              fileHeld.push([tok.sepId]);
              paragraphs.heldOut++;
            } else {
              fileTrain.push(paragraph);
              paragraphs.train++;
            }
          }
          paragraph = [];
          hash = crypto.createHash('sha256');
        } else if (fileTrain.length && fileTrain.last() !== tok.sepId) {
          fileTrain.push([tok.sepId]);
        }
      }
    } catch (e) {
      if (!(e instanceof UnreadableCorpusFile)) throw e;
      meta.skipped.push({ path: file.path, reason: e.message });
      opts.log?.(`corpus: skipped ${e.message}`);
      bytesDone += file.size;
      continue;
    }
    if (train.length && train.last() !== tok.sepId && fileTrain.length) train.push([tok.sepId]);
    train.push(fileTrain.view());
    heldOut.push(fileHeld.view());
    meta.paragraphs.train += paragraphs.train;
    meta.paragraphs.heldOut += paragraphs.heldOut;
    meta.files.push({ path: file.path, sha256: file.sha256, size: file.size, tokens: fileTrain.length + fileHeld.length });
    bytesDone += file.size;
    opts.onProgress?.(bytesDone, totalBytes, train.length + heldOut.length);
  }
  meta.tokens = { train: train.length, heldOut: heldOut.length };
  if (meta.files.length === 0) throw new ModtuneError(`corpus: none of the ${files.length} files could be read (${meta.skipped[0]?.reason ?? ''})`);
  if (train.length === 0) throw new ModtuneError(`corpus: the files hold no text (${files.map((f) => f.path).slice(0, 3).join(', ')})`);
  meta.seconds = Math.round((performance.now() - t0) / 100) / 10;

  const Typed = meta.dtype === 'uint16' ? Uint16Array : Uint32Array;
  const trainIds = Typed.from(train.view());
  const heldIds = Typed.from(heldOut.view());
  const tmp = `${dir}.tmp-${process.pid}`;
  fs.rmSync(tmp, { recursive: true, force: true });
  fs.mkdirSync(tmp, { recursive: true });
  try {
    writeAtomic(path.join(tmp, 'train.bin'), new Uint8Array(trainIds.buffer, trainIds.byteOffset, trainIds.byteLength));
    writeAtomic(path.join(tmp, 'heldout.bin'), new Uint8Array(heldIds.buffer, heldIds.byteOffset, heldIds.byteLength));
    writeAtomic(path.join(tmp, 'meta.json'), `${JSON.stringify(meta, null, 2)}\n`);
    fs.rmSync(dir, { recursive: true, force: true });
    fs.renameSync(tmp, dir);
  } catch (e) {
    fs.rmSync(tmp, { recursive: true, force: true });
    const err = e as NodeJS.ErrnoException;
    throw new ModtuneError(`cannot write the corpus cache ${dir}: ${err.code === 'ENOSPC' ? 'the disk is full' : err.message}`);
  }
  opts.log?.(`corpus: ${meta.files.length} files → ${meta.tokens.train.toLocaleString('en-US')} training + ${meta.tokens.heldOut.toLocaleString('en-US')} held-out tokens in ${meta.seconds} s (cached in ${dir})`);
  return { dir, meta, train: trainIds, heldOut: heldIds };
}

/** A cached shard, or null when the folder holds none (or an unusable one, which is rebuilt). */
export function readShard(dir: string): TokenShard | null {
  let meta: ShardMeta;
  try {
    meta = JSON.parse(fs.readFileSync(path.join(dir, 'meta.json'), 'utf8')) as ShardMeta;
  } catch {
    return null;
  }
  if (meta.format !== SHARD_FORMAT || meta.version !== SHARD_VERSION) return null;
  const width = meta.dtype === 'uint16' ? 2 : 4;
  const read = (f: string, n: number) => {
    const buf = fs.readFileSync(path.join(dir, f));
    if (buf.length !== n * width) return null;
    const copy = new Uint8Array(buf.length);
    copy.set(buf);
    return width === 2 ? new Uint16Array(copy.buffer) : new Uint32Array(copy.buffer);
  };
  try {
    const train = read('train.bin', meta.tokens.train);
    const heldOut = read('heldout.bin', meta.tokens.heldOut);
    if (!train || !heldOut) return null;
    return { dir, meta, train, heldOut };
  } catch {
    return null;
  }
}
