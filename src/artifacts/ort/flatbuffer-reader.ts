import { ByteBuffer } from 'flatbuffers';
import { ModtuneError } from '../../errors.js';

/**
 * Bounds-checked access to FlatBuffers tables. The `flatbuffers` package reads whatever offset it is
 * given (out-of-range bytes read as 0), which is fine for trusted data and wrong for files from
 * disk: every offset, vtable, vector and string here is checked against the buffer before use, and
 * a violation is a one-line ModtuneError naming the file and the field being read.
 */
export class CheckedBuffer {
  readonly bb: ByteBuffer;
  readonly size: number;

  constructor(readonly bytes: Uint8Array, readonly label: string) {
    this.bb = new ByteBuffer(bytes);
    this.size = bytes.byteLength;
  }

  fail(what: string, problem: string): never {
    throw new ModtuneError(`${this.label}: ${what}: ${problem}; the checkpoint is corrupt or not an ORT training checkpoint`);
  }

  /** Throw unless [pos, pos+len) lies inside the buffer. */
  need(pos: number, len: number, what: string): void {
    if (!Number.isSafeInteger(pos) || pos < 0 || len < 0 || pos + len > this.size) {
      this.fail(what, `bytes [${pos}, ${pos + len}) lie outside the ${this.size}-byte buffer`);
    }
  }

  /** Follow the uoffset stored at `pos` (relative to `pos`). */
  deref(pos: number, what: string): number {
    this.need(pos, 4, what);
    const target = pos + this.bb.readUint32(pos);
    this.need(target, 4, what);
    return target;
  }

  /** The root table, after checking the 4-character file identifier. */
  root(identifier: string, what: string): Table {
    this.need(0, 8, what);
    const id = String.fromCharCode(...this.bytes.subarray(4, 8));
    if (id !== identifier) {
      const shown = /^[\x20-\x7e]{4}$/.test(id) ? `'${id}'` : 'binary bytes';
      throw new ModtuneError(`${this.label}: file identifier is ${shown}, expected '${identifier}' (not an ORT training checkpoint)`);
    }
    return new Table(this, this.deref(0, what), what);
  }
}

/** One table: its position, its vtable and the size of its inline data, all checked. */
export class Table {
  private readonly vtable: number;
  private readonly vtableSize: number;
  private readonly inlineSize: number;

  constructor(private readonly buf: CheckedBuffer, readonly pos: number, readonly what: string) {
    buf.need(pos, 4, what);
    const vtable = pos - buf.bb.readInt32(pos);
    buf.need(vtable, 4, `${what} vtable`);
    this.vtable = vtable;
    this.vtableSize = buf.bb.readUint16(vtable);
    this.inlineSize = buf.bb.readUint16(vtable + 2);
    if (this.vtableSize < 4 || this.vtableSize % 2 !== 0) buf.fail(`${what} vtable`, `invalid vtable size ${this.vtableSize}`);
    buf.need(vtable, this.vtableSize, `${what} vtable`);
    buf.need(pos, Math.max(this.inlineSize, 4), what);
  }

  /** Absolute position of field `slot` (0-based, declaration order), or 0 when absent. */
  private field(slot: number, width: number, name: string): number {
    const entry = 4 + 2 * slot;
    if (entry + 2 > this.vtableSize) return 0;
    const off = this.buf.bb.readUint16(this.vtable + entry);
    if (off === 0) return 0;
    if (off + width > this.inlineSize) this.buf.fail(`${this.what}.${name}`, `field at ${off} overruns the table's ${this.inlineSize} inline bytes`);
    return this.pos + off;
  }

  has(slot: number): boolean {
    const entry = 4 + 2 * slot;
    return entry + 2 <= this.vtableSize && this.buf.bb.readUint16(this.vtable + entry) !== 0;
  }

  int32(slot: number, name: string, dflt: number): number {
    const p = this.field(slot, 4, name);
    return p ? this.buf.bb.readInt32(p) : dflt;
  }

  /** int64 as a JS number; values outside ±2^53 are refused rather than rounded. */
  int64(slot: number, name: string, dflt: number): number {
    const p = this.field(slot, 8, name);
    if (!p) return dflt;
    const v = this.buf.bb.readInt64(p);
    if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(Number.MIN_SAFE_INTEGER)) {
      this.buf.fail(`${this.what}.${name}`, `value ${v} is outside the range this reader supports (±2^53)`);
    }
    return Number(v);
  }

  float32(slot: number, name: string, dflt: number): number {
    const p = this.field(slot, 4, name);
    return p ? this.buf.bb.readFloat32(p) : dflt;
  }

  bool(slot: number, name: string): boolean {
    const p = this.field(slot, 1, name);
    return p ? this.buf.bb.readUint8(p) !== 0 : false;
  }

  string(slot: number, name: string): string | undefined {
    const p = this.field(slot, 4, name);
    if (!p) return undefined;
    return readString(this.buf, this.buf.deref(p, `${this.what}.${name}`), `${this.what}.${name}`);
  }

  table(slot: number, name: string): Table | undefined {
    const p = this.field(slot, 4, name);
    return p ? new Table(this.buf, this.buf.deref(p, `${this.what}.${name}`), `${this.what}.${name}`) : undefined;
  }

  /** A vector field: its element count and the position of element 0. */
  vector(slot: number, name: string, elemSize: number): { length: number; start: number } | undefined {
    const p = this.field(slot, 4, name);
    if (!p) return undefined;
    const what = `${this.what}.${name}`;
    const at = this.buf.deref(p, what);
    const length = this.buf.bb.readUint32(at);
    this.buf.need(at + 4, length * elemSize, `${what} (${length} elements)`);
    return { length, start: at + 4 };
  }

  tables(slot: number, name: string): Table[] {
    const v = this.vector(slot, name, 4);
    if (!v) return [];
    const out: Table[] = [];
    for (let i = 0; i < v.length; i++) {
      const at = v.start + 4 * i;
      out.push(new Table(this.buf, this.buf.deref(at, `${this.what}.${name}[${i}]`), `${this.what}.${name}[${i}]`));
    }
    return out;
  }

  strings(slot: number, name: string): string[] {
    const v = this.vector(slot, name, 4);
    if (!v) return [];
    const out: string[] = [];
    for (let i = 0; i < v.length; i++) {
      const what = `${this.what}.${name}[${i}]`;
      out.push(readString(this.buf, this.buf.deref(v.start + 4 * i, what), what));
    }
    return out;
  }

  int64s(slot: number, name: string): number[] | undefined {
    const v = this.vector(slot, name, 8);
    if (!v) return undefined;
    const out = new Array<number>(v.length);
    for (let i = 0; i < v.length; i++) {
      const x = this.buf.bb.readInt64(v.start + 8 * i);
      if (x > BigInt(Number.MAX_SAFE_INTEGER) || x < BigInt(Number.MIN_SAFE_INTEGER)) {
        this.buf.fail(`${this.what}.${name}[${i}]`, `value ${x} is outside ±2^53`);
      }
      out[i] = Number(x);
    }
    return out;
  }

  /** A [ubyte] vector as a view into the buffer (no copy). */
  bytes(slot: number, name: string): Uint8Array | undefined {
    const v = this.vector(slot, name, 1);
    if (!v) return undefined;
    return this.buf.bytes.subarray(v.start, v.start + v.length);
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

function readString(buf: CheckedBuffer, at: number, what: string): string {
  const length = buf.bb.readUint32(at);
  buf.need(at + 4, length, `${what} (string of ${length} bytes)`);
  try {
    return utf8.decode(buf.bytes.subarray(at + 4, at + 4 + length));
  } catch {
    return buf.fail(what, 'string is not valid UTF-8');
  }
}
