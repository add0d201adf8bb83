import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { ModtuneError } from '../errors.js';

/**
 * A small ZIP reader (stored and deflated entries, ZIP64 sizes and offsets) for the GLUE archives.
 * The archive is untrusted: every offset and length is checked against the file, entries are
 * inflated with an output cap at their declared size, CRCs are verified, and no entry may land
 * outside the target folder.
 */
export interface ZipEntry {
  name: string;
  method: number;
  flags: number;
  crc32: number;
  compressedSize: number;
  size: number;
  localHeaderOffset: number;
  isDirectory: boolean;
  isSymlink: boolean;
}

const EOCD_SIG = 0x06054b50;
const ZIP64_LOCATOR_SIG = 0x07064b50;
const ZIP64_EOCD_SIG = 0x06064b50;
const CENTRAL_SIG = 0x02014b50;
const LOCAL_SIG = 0x04034b50;
const U32_MAX = 0xffffffff;
const U16_MAX = 0xffff;

export class ZipReader {
  readonly entries: ZipEntry[];
  private readonly fd: number;
  private readonly fileSize: number;

  private constructor(private readonly file: string) {
    this.fd = fs.openSync(file, 'r');
    try {
      this.fileSize = fs.fstatSync(this.fd).size;
      this.entries = this.readCentralDirectory();
    } catch (e) {
      fs.closeSync(this.fd);
      throw e;
    }
  }

  static open(file: string): ZipReader {
    return new ZipReader(file);
  }

  close(): void {
    fs.closeSync(this.fd);
  }

  private fail(what: string): ModtuneError {
    return new ModtuneError(`${this.file}: not a valid zip archive (${what})`);
  }

  /** Read `length` bytes at `offset`, refusing ranges outside the file. */
  private read(offset: number, length: number, what: string): Buffer {
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > this.fileSize) {
      throw this.fail(`${what} at ${offset}+${length} lies outside the ${this.fileSize}-byte file`);
    }
    const buf = Buffer.alloc(length);
    let done = 0;
    while (done < length) {
      const n = fs.readSync(this.fd, buf, done, length - done, offset + done);
      if (n === 0) throw this.fail(`${what} truncated`);
      done += n;
    }
    return buf;
  }

  private readCentralDirectory(): ZipEntry[] {
    // The end record is 22 bytes plus a comment of up to 65535 bytes, at the very end.
    const tailLength = Math.min(this.fileSize, 22 + U16_MAX);
    if (tailLength < 22) throw this.fail('too short');
    const tail = this.read(this.fileSize - tailLength, tailLength, 'end record');
    let eocd = -1;
    for (let i = tailLength - 22; i >= 0; i--) {
      if (tail.readUInt32LE(i) === EOCD_SIG && i + 22 + tail.readUInt16LE(i + 20) === tailLength) { eocd = i; break; }
    }
    if (eocd < 0) throw this.fail('no end-of-central-directory record');
    const eocdOffset = this.fileSize - tailLength + eocd;
    let count = tail.readUInt16LE(eocd + 10);
    let cdSize = tail.readUInt32LE(eocd + 12);
    let cdOffset = tail.readUInt32LE(eocd + 16);
    if (tail.readUInt16LE(eocd + 4) !== 0 || tail.readUInt16LE(eocd + 6) !== 0) throw this.fail('multi-disk archives are not supported');
    if (count === U16_MAX || cdSize === U32_MAX || cdOffset === U32_MAX) {
      const locator = this.read(eocdOffset - 20, 20, 'ZIP64 locator');
      if (locator.readUInt32LE(0) !== ZIP64_LOCATOR_SIG) throw this.fail('ZIP64 locator missing');
      const record = this.read(safeU64(locator, 8, this), 56, 'ZIP64 end record');
      if (record.readUInt32LE(0) !== ZIP64_EOCD_SIG) throw this.fail('ZIP64 end record missing');
      count = safeU64(record, 32, this);
      cdSize = safeU64(record, 40, this);
      cdOffset = safeU64(record, 48, this);
    }
    const cd = this.read(cdOffset, cdSize, 'central directory');
    const entries: ZipEntry[] = [];
    let p = 0;
    for (let i = 0; i < count; i++) {
      if (p + 46 > cd.length || cd.readUInt32LE(p) !== CENTRAL_SIG) throw this.fail(`central directory entry ${i} malformed`);
      const madeBy = cd.readUInt16LE(p + 4);
      const flags = cd.readUInt16LE(p + 8);
      const method = cd.readUInt16LE(p + 10);
      const crc32 = cd.readUInt32LE(p + 16);
      let compressedSize = cd.readUInt32LE(p + 20);
      let size = cd.readUInt32LE(p + 24);
      const nameLength = cd.readUInt16LE(p + 28);
      const extraLength = cd.readUInt16LE(p + 30);
      const commentLength = cd.readUInt16LE(p + 32);
      const externalAttributes = cd.readUInt32LE(p + 38);
      let localHeaderOffset = cd.readUInt32LE(p + 42);
      const end = p + 46 + nameLength + extraLength + commentLength;
      if (end > cd.length) throw this.fail(`central directory entry ${i} runs past the directory`);
      const name = cd.toString('utf8', p + 46, p + 46 + nameLength);
      // ZIP64 extended information: the 64-bit values, in this order, for the fields saturated above.
      let q = p + 46 + nameLength;
      const extraEnd = q + extraLength;
      while (q + 4 <= extraEnd) {
        const id = cd.readUInt16LE(q);
        const len = cd.readUInt16LE(q + 2);
        if (q + 4 + len > extraEnd) throw this.fail(`extra field of '${name}' runs past its entry`);
        if (id === 0x0001) {
          let r = q + 4;
          const take = () => {
            if (r + 8 > q + 4 + len) throw this.fail(`ZIP64 field of '${name}' too short`);
            const v = safeU64(cd, r, this);
            r += 8;
            return v;
          };
          if (size === U32_MAX) size = take();
          if (compressedSize === U32_MAX) compressedSize = take();
          if (localHeaderOffset === U32_MAX) localHeaderOffset = take();
        }
        q += 4 + len;
      }
      const unixMode = (madeBy >> 8) === 3 ? externalAttributes >>> 16 : 0;
      entries.push({
        name, method, flags, crc32, compressedSize, size, localHeaderOffset,
        isDirectory: name.endsWith('/') || name.endsWith('\\'),
        isSymlink: (unixMode & 0o170000) === 0o120000,
      });
      p = end;
    }
    return entries;
  }

  /** The uncompressed content of an entry, checked against its declared size and CRC-32. */
  readEntry(entry: ZipEntry): Buffer {
    if (entry.flags & 0x1) throw new ModtuneError(`${this.file}: entry '${entry.name}' is encrypted; cannot extract`);
    const local = this.read(entry.localHeaderOffset, 30, `local header of '${entry.name}'`);
    if (local.readUInt32LE(0) !== LOCAL_SIG) throw this.fail(`local header of '${entry.name}' missing`);
    const dataStart = entry.localHeaderOffset + 30 + local.readUInt16LE(26) + local.readUInt16LE(28);
    const raw = this.read(dataStart, entry.compressedSize, `data of '${entry.name}'`);
    let data: Buffer;
    if (entry.method === 0) {
      data = raw;
    } else if (entry.method === 8) {
      try {
        // Cap the output at the declared size: a lying header cannot make us inflate a bomb.
        data = zlib.inflateRawSync(raw, { maxOutputLength: Math.max(1, entry.size) });
      } catch (e) {
        throw this.fail(`'${entry.name}' does not inflate to its declared ${entry.size} bytes: ${(e as Error).message}`);
      }
    } else {
      throw new ModtuneError(`${this.file}: entry '${entry.name}' uses compression method ${entry.method}; only stored (0) and deflate (8) are supported`);
    }
    if (data.length !== entry.size) throw this.fail(`'${entry.name}' is ${data.length} bytes, its header says ${entry.size}`);
    if (crc32(data) !== entry.crc32) throw this.fail(`CRC-32 mismatch in '${entry.name}'`);
    return data;
  }
}

function safeU64(buf: Buffer, offset: number, zip: ZipReader): number {
  const v = buf.readBigUInt64LE(offset);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw zip['fail'](`64-bit value ${v} out of range`);
  return Number(v);
}

/**
 * The path an entry would be written to under `target`, or an error if its name is absolute, has a
 * drive letter or `..` segment, or otherwise resolves outside `target`.
 */
export function safeEntryPath(target: string, name: string, archive = 'zip archive'): string {
  const normalized = name.replace(/\\/g, '/');
  const segments = normalized.split('/').filter((s) => s !== '' && s !== '.');
  if (normalized.startsWith('/') || /^[a-zA-Z]:/.test(normalized) || segments.includes('..') || segments.length === 0 || name.includes('\0')) {
    throw new ModtuneError(`${archive}: entry '${name}' would be written outside the target folder; refusing to extract`);
  }
  const root = path.resolve(target);
  const out = path.resolve(root, ...segments);
  if (out !== root && !out.startsWith(root + path.sep)) {
    throw new ModtuneError(`${archive}: entry '${name}' would be written outside the target folder; refusing to extract`);
  }
  return out;
}

/**
 * Extract every entry of `zipFile` under `target` (created if needed). All names are checked before
 * anything is written, so a hostile archive leaves nothing behind. Returns the files written.
 */
export function extractZip(zipFile: string, target: string, opts: { skip?: (name: string) => boolean; maxBytes?: number } = {}): string[] {
  const zip = ZipReader.open(zipFile);
  try {
    const plan = zip.entries
      .filter((e) => !opts.skip?.(e.name))
      .map((entry) => {
        if (entry.isSymlink) throw new ModtuneError(`${zipFile}: entry '${entry.name}' is a symbolic link; refusing to extract`);
        return { entry, out: safeEntryPath(target, entry.name, zipFile) };
      });
    // Two entries for one path: which one wins would depend on the extractor; refuse the archive.
    const seen = new Map<string, string>();
    for (const { entry, out } of plan) {
      const key = out.replace(/[\\/]+$/, '');
      const before = seen.get(key);
      if (before !== undefined) throw new ModtuneError(`${zipFile}: entries '${before}' and '${entry.name}' name the same path; refusing to extract`);
      seen.set(key, entry.name);
    }
    const total = plan.reduce((sum, { entry }) => sum + entry.size, 0);
    const maxBytes = opts.maxBytes ?? 8 * 2 ** 30;
    if (total > maxBytes) throw new ModtuneError(`${zipFile}: entries add up to ${total} bytes, over the ${maxBytes}-byte limit; refusing to extract`);
    const written: string[] = [];
    for (const { entry, out } of plan) {
      if (entry.isDirectory) {
        fs.mkdirSync(out, { recursive: true });
        continue;
      }
      fs.mkdirSync(path.dirname(out), { recursive: true });
      fs.writeFileSync(out, zip.readEntry(entry));
      written.push(out);
    }
    return written;
  } finally {
    zip.close();
  }
}

let crcTable: Int32Array | undefined;

/** CRC-32 (IEEE), from zlib when this Node has it. */
export function crc32(data: Uint8Array): number {
  const native = (zlib as unknown as { crc32?: (d: Uint8Array) => number }).crc32;
  if (native) return native(data) >>> 0;
  if (!crcTable) {
    crcTable = new Int32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c;
    }
  }
  let c = -1;
  for (let i = 0; i < data.length; i++) c = crcTable[(c ^ data[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ -1) >>> 0;
}
