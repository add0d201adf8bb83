/**
 * A model file's producer and metadata_props without loading the model: the top-level fields of
 * ModelProto are walked with positional reads, and every other field (the graph above all) is
 * skipped by its length. Used to tell whether an existing file is one modtune wrote before
 * replacing it, which must not cost reading a gigabyte model.
 */
import * as fs from 'node:fs';

export interface ModelHeader {
  producerName: string;
  metadata: Record<string, string>;
}

const PRODUCER_NAME = 2;
const METADATA_PROPS = 14;
/** Beyond these sizes a field is not a producer name or metadata modtune wrote. */
const MAX_STRING = 1 << 20;
const MAX_ENTRY = 64 << 20;

/** The header of an ONNX model file, or null when the file is not a well-formed protobuf. */
export function readModelHeader(file: string): ModelHeader | null {
  const fd = fs.openSync(file, 'r');
  try {
    const size = fs.fstatSync(fd).size;
    const out: ModelHeader = { producerName: '', metadata: {} };
    let pos = 0;
    const bytesAt = (at: number, n: number): Buffer => {
      const buf = Buffer.alloc(n);
      const got = fs.readSync(fd, buf, 0, n, at);
      return buf.subarray(0, got);
    };
    while (pos < size) {
      const tag = readVarint(bytesAt(pos, 10), 0);
      if (!tag) return null;
      pos += tag.length;
      const field = Math.floor(tag.value / 8);
      const wire = tag.value % 8;
      if (wire === 0) {
        const v = readVarint(bytesAt(pos, 10), 0);
        if (!v) return null;
        pos += v.length;
      } else if (wire === 1) {
        pos += 8;
      } else if (wire === 5) {
        pos += 4;
      } else if (wire === 2) {
        const len = readVarint(bytesAt(pos, 10), 0);
        if (!len) return null;
        pos += len.length;
        if (pos + len.value > size) return null;
        if (field === PRODUCER_NAME && len.value <= MAX_STRING) {
          out.producerName = bytesAt(pos, len.value).toString('utf8');
        } else if (field === METADATA_PROPS && len.value <= MAX_ENTRY) {
          const entry = readEntry(bytesAt(pos, len.value));
          if (!entry) return null;
          out.metadata[entry.key] = entry.value;
        }
        pos += len.value;
      } else {
        return null;
      }
    }
    return pos === size ? out : null;
  } finally {
    fs.closeSync(fd);
  }
}

function readVarint(buf: Buffer, at: number): { value: number; length: number } | null {
  let value = 0;
  let scale = 1;
  for (let i = at; i < buf.length && i - at < 10; i++) {
    const b = buf[i]!;
    value += (b & 0x7f) * scale;
    scale *= 128;
    if (b < 0x80) return Number.isSafeInteger(value) ? { value, length: i - at + 1 } : null;
  }
  return null;
}

/** A StringStringEntryProto: key = 1, value = 2. */
function readEntry(buf: Buffer): { key: string; value: string } | null {
  let key = '';
  let value = '';
  let pos = 0;
  while (pos < buf.length) {
    const tag = readVarint(buf, pos);
    if (!tag || tag.value % 8 !== 2) return null;
    pos += tag.length;
    const len = readVarint(buf, pos);
    if (!len || pos + len.length + len.value > buf.length) return null;
    pos += len.length;
    const text = buf.subarray(pos, pos + len.value).toString('utf8');
    if (tag.value >>> 3 === 1) key = text;
    else if (tag.value >>> 3 === 2) value = text;
    pos += len.value;
  }
  return { key, value };
}
