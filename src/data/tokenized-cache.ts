import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { writeAtomic } from '../onnx/io.js';
import { encodeExamples, type EncodedDataset } from './encoded.js';
import { glueSplitPath, parseGlueSplit, readGlueSplit } from './glue-reader.js';
import { getGlueSplit, getGlueTask, type GlueTask } from './glue-tasks.js';
import { modtuneCacheDir } from './paths.js';
import type { BertTokenizer } from './tokenizer.js';

const FORMAT = 'modtune-tokenized';
const VERSION = 1;

interface CacheMeta {
  format: string;
  version: number;
  key: string;
  task: string;
  split: string;
  file: string;
  fileHash: string;
  tokenizer: string;
  maxLength: number;
  size: number;
  tokens: number;
  labelKind: EncodedDataset['labelKind'];
  padId: number;
  skipped: number;
  binBytes: number;
  ids: string[];
}

export interface LoadedSplit {
  dataset: EncodedDataset;
  /** Malformed rows the reader skipped (QQP). */
  skipped: number;
  cacheHit: boolean;
  /** The TSV read, and the cache key (sha256 of file content, tokenizer, max length). */
  file: string;
  key: string;
}

export interface LoadSplitOptions {
  task: string | GlueTask;
  split: string;
  /** GLUE root (or task folder): see `resolveGlueDir`. */
  dir: string;
  tokenizer: BertTokenizer;
  maxLength: number;
  /** Cache root (`<cache>/tokenized/`); default `modtuneCacheDir()`; false: no cache. */
  cacheDir?: string | false;
  onProgress?: (done: number, total: number) => void;
}

/**
 * A GLUE split tokenized to `maxLength`, from `<cache>/tokenized/<key>.bin|.json` when the file
 * content, tokenizer and length match an earlier run, else read, tokenized and stored there.
 */
export function loadEncodedSplit(opts: LoadSplitOptions): LoadedSplit {
  const task = getGlueTask(opts.task);
  const { name: split } = getGlueSplit(task, opts.split);
  const file = glueSplitPath(task, split, opts.dir);
  if (!fs.existsSync(file)) readGlueSplit(task, split, opts.dir); // throws the reader's "not found" message
  const bytes = fs.readFileSync(file);
  const fileHash = crypto.createHash('sha256').update(bytes).digest('hex');
  const key = crypto.createHash('sha256')
    .update(`${FORMAT}/${VERSION}\n${task.name}\n${split}\n${fileHash}\n${opts.tokenizer.fingerprint}\n${opts.maxLength}`)
    .digest('hex').slice(0, 40);
  const dir = opts.cacheDir === false ? undefined : path.join(modtuneCacheDir(opts.cacheDir), 'tokenized');
  if (dir) {
    const cached = readCache(dir, key);
    if (cached) return { dataset: cached.dataset, skipped: cached.skipped, cacheHit: true, file, key };
  }
  const { examples, skipped } = parseGlueSplit(task, split, bytes.toString('utf8'), file);
  const dataset = encodeExamples(opts.tokenizer, examples, opts.maxLength, { regression: task.regression, onProgress: opts.onProgress });
  if (dir) {
    writeCache(dir, {
      format: FORMAT, version: VERSION, key, task: task.name, split, file, fileHash, tokenizer: opts.tokenizer.fingerprint,
      maxLength: opts.maxLength, size: dataset.size, tokens: dataset.inputIds.length, labelKind: dataset.labelKind,
      padId: dataset.padId, skipped, binBytes: 0, ids: dataset.ids,
    }, dataset);
  }
  return { dataset, skipped, cacheHit: false, file, key };
}

/** Binary layout, little-endian: offsets u32[size+1], input ids i32[tokens], labels f32[size]?, token types u8[tokens]. */
function binLayout(size: number, tokens: number, labelled: boolean) {
  const offsets = 0;
  const inputIds = offsets + 4 * (size + 1);
  const labels = inputIds + 4 * tokens;
  const types = labels + (labelled ? 4 * size : 0);
  return { offsets, inputIds, labels, types, total: types + tokens };
}

function writeCache(dir: string, meta: CacheMeta, ds: EncodedDataset): void {
  const layout = binLayout(ds.size, ds.inputIds.length, ds.labels !== null);
  const bin = new Uint8Array(layout.total);
  const view = new DataView(bin.buffer);
  ds.offsets.forEach((v, i) => view.setUint32(layout.offsets + 4 * i, v, true));
  ds.inputIds.forEach((v, i) => view.setInt32(layout.inputIds + 4 * i, v, true));
  ds.labels?.forEach((v, i) => view.setFloat32(layout.labels + 4 * i, v, true));
  bin.set(ds.tokenTypeIds, layout.types);
  try {
    fs.mkdirSync(dir, { recursive: true });
    // The .json is written last: its presence says the .bin beside it is complete.
    writeAtomic(path.join(dir, `${meta.key}.bin`), bin);
    writeAtomic(path.join(dir, `${meta.key}.json`), JSON.stringify({ ...meta, binBytes: bin.byteLength }));
  } catch {
    // A cache that cannot be written (read-only home, full disk) only costs the next run time.
  }
}

function readCache(dir: string, key: string): { dataset: EncodedDataset; skipped: number } | undefined {
  const jsonFile = path.join(dir, `${key}.json`);
  const binFile = path.join(dir, `${key}.bin`);
  let meta: CacheMeta;
  let bin: Buffer;
  try {
    meta = JSON.parse(fs.readFileSync(jsonFile, 'utf8')) as CacheMeta;
    bin = fs.readFileSync(binFile);
  } catch {
    return undefined;
  }
  // Anything inconsistent is treated as a miss: the split is tokenized again and the entry rewritten.
  if (meta.format !== FORMAT || meta.version !== VERSION || meta.key !== key || !Array.isArray(meta.ids)) return undefined;
  const { size, tokens } = meta;
  if (!Number.isInteger(size) || !Number.isInteger(tokens) || size < 0 || tokens < 0 || meta.ids.length !== size) return undefined;
  const labelled = meta.labelKind === 'class' || meta.labelKind === 'score';
  const layout = binLayout(size, tokens, labelled);
  if (bin.byteLength !== layout.total || meta.binBytes !== layout.total) return undefined;
  const view = new DataView(bin.buffer, bin.byteOffset, bin.byteLength);
  const offsets = new Uint32Array(size + 1);
  for (let i = 0; i <= size; i++) offsets[i] = view.getUint32(layout.offsets + 4 * i, true);
  if (offsets[0] !== 0 || offsets[size] !== tokens) return undefined;
  for (let i = 0; i < size; i++) if (offsets[i + 1]! < offsets[i]!) return undefined;
  const inputIds = new Int32Array(tokens);
  for (let i = 0; i < tokens; i++) inputIds[i] = view.getInt32(layout.inputIds + 4 * i, true);
  let labels: Float32Array | null = null;
  if (labelled) {
    labels = new Float32Array(size);
    for (let i = 0; i < size; i++) labels[i] = view.getFloat32(layout.labels + 4 * i, true);
  }
  const tokenTypeIds = new Uint8Array(bin.subarray(layout.types, layout.types + tokens));
  return {
    dataset: { size, ids: meta.ids, offsets, inputIds, tokenTypeIds, labels, labelKind: meta.labelKind, padId: meta.padId, maxLength: meta.maxLength },
    skipped: meta.skipped,
  };
}
