/**
 * The safetensors format: an 8-byte little-endian header length N, N bytes of JSON header
 * (`{"__metadata__": {..}, "<name>": {"dtype", "shape", "data_offsets": [begin, end]}}`, offsets
 * relative to the data that follows), then the tensor bytes. Files are untrusted: every length and
 * offset is checked before anything is read. This file does the file I/O; the format itself is in
 * ./safetensors-format.ts (no Node modules, shared with the browser page).
 */
import { writePiecesAtomic } from '../onnx/io.js';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ModtuneError } from '../errors.js';
import {
  encodeSafetensors, FLOAT_DTYPES, headerLength, parseHeader, toFloat32,
  type ReadOptions, type SafetensorsFile, type SafetensorsInput, type SafetensorsTensor,
} from './safetensors-format.js';

export {
  encodeSafetensors, floatToBfloat16, parseSafetensors,
  type ReadOptions, type SafetensorsFile, type SafetensorsInput, type SafetensorsTensor,
} from './safetensors-format.js';

/**
 * Read a .safetensors file. Each tensor is read straight into its own aligned buffer, so memory is
 * the tensors' size and files over Node's 2 GiB single-read limit work too.
 */
export function readSafetensors(file: string, opts: ReadOptions = {}): SafetensorsFile {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch (e) {
    throw new ModtuneError(`${file}: cannot open safetensors file (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  try {
    const size = fs.fstatSync(fd).size;
    const prefix = readExactly(fd, 0, Math.min(8, size), file);
    const n = headerLength(prefix, size, file);
    const dataStart = 8 + n;
    const { metadata, entries } = parseHeader(readExactly(fd, 8, n, file), size - dataStart, file);
    const tensors = new Map<string, SafetensorsTensor>();
    for (const e of entries) {
      if (opts.ignore?.(e.name)) continue;
      if (!FLOAT_DTYPES.includes(e.dtype)) toFloat32(e, new Uint8Array(0), file); // throws the dtype error before reading
      const raw = readExactly(fd, dataStart + e.begin, e.end - e.begin, file);
      tensors.set(e.name, { dtype: e.dtype, shape: e.shape, data: toFloat32(e, raw, file) });
    }
    return { metadata, tensors };
  } finally {
    fs.closeSync(fd);
  }
}

function readExactly(fd: number, position: number, length: number, label: string): Uint8Array {
  const out = new Uint8Array(length);
  let done = 0;
  while (done < length) {
    const got = fs.readSync(fd, out, done, length - done, position + done);
    if (got <= 0) throw new ModtuneError(`${label}: unexpected end of file at byte ${position + done}`);
    done += got;
  }
  return out;
}

// ---- writing ---------------------------------------------------------------------------------

/** Write tensors (float32, or F16/BF16 when asked) to a .safetensors file, atomically. */
export function writeSafetensors(
  file: string,
  tensors: Record<string, SafetensorsInput> | Map<string, SafetensorsInput>,
  metadata?: Record<string, string>,
): void {
  const pieces = encodeSafetensors(tensors, metadata, file);
  fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  writePiecesAtomic(file, pieces);
}

// ---- sharded checkpoints -------------------------------------------------------------------------

/**
 * Load every shard listed by a `model.safetensors.index.json` (`{"metadata": {..}, "weight_map":
 * {"<tensor>": "<shard file>"}}`) and merge them. Shards must sit in the index's folder; each tensor
 * must be in the shard the index names, and no tensor may appear in two shards.
 */
export function readSafetensorsIndex(indexFile: string, opts: ReadOptions = {}): SafetensorsFile {
  let json: unknown;
  try {
    json = JSON.parse(fs.readFileSync(indexFile, 'utf8'));
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new ModtuneError(`${indexFile}: cannot read the safetensors index (${err.code ?? err.message})`);
  }
  const weightMap = (json as { weight_map?: unknown } | null)?.weight_map;
  if (typeof weightMap !== 'object' || weightMap === null || Array.isArray(weightMap)) {
    throw new ModtuneError(`${indexFile}: field 'weight_map' should be an object mapping tensor names to shard files`);
  }
  const dir = path.dirname(path.resolve(indexFile));
  const byShard = new Map<string, string[]>();
  for (const [name, shard] of Object.entries(weightMap as Record<string, unknown>)) {
    if (typeof shard !== 'string' || shard === '' || path.isAbsolute(shard) || path.basename(shard) !== shard) {
      throw new ModtuneError(`${indexFile}: tensor '${name}': shard ${JSON.stringify(shard)} should be a file name in the index's folder`);
    }
    let names = byShard.get(shard);
    if (!names) byShard.set(shard, (names = []));
    names.push(name);
  }
  if (byShard.size === 0) throw new ModtuneError(`${indexFile}: 'weight_map' lists no tensors`);
  const metadataField = (json as { metadata?: unknown }).metadata;
  const metadata: Record<string, string> = {};
  if (typeof metadataField === 'object' && metadataField !== null) {
    for (const [k, v] of Object.entries(metadataField)) metadata[k] = String(v);
  }
  const tensors = new Map<string, SafetensorsTensor>();
  for (const [shard, names] of byShard) {
    const shardPath = path.join(dir, shard);
    const part = readSafetensors(shardPath, opts);
    for (const name of names) {
      if (!part.tensors.has(name) && !opts.ignore?.(name)) {
        throw new ModtuneError(`${shardPath}: tensor '${name}' is listed in ${path.basename(indexFile)} but not in this shard`);
      }
    }
    for (const [name, t] of part.tensors) {
      if (tensors.has(name)) throw new ModtuneError(`${shardPath}: tensor '${name}' also appears in another shard`);
      tensors.set(name, t);
    }
  }
  return { metadata, tensors };
}
