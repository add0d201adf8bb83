/**
 * The delta folder: `delta.json` (what the delta is for and how to apply it), `delta.safetensors`
 * (the tuned tensors, Hugging Face names and layout) and a copy of the tokenizer. A delta is tied to
 * one base model by its sha256; everything a merge or a predictor needs besides the base is here.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ModtuneError } from '../errors.js';
import { resolveInside } from '../util/inside.js';
import { readSafetensors } from '../bert/safetensors.js';
import { checkDeltaManifest, DELTA_JSON, DELTA_TENSORS, type DeltaManifest } from './delta-format.js';
import { sha256File } from '../onnx/hash.js';
import { checkFinite, sameShape } from './delta-format.js';

export {
  DELTA_FORMAT, DELTA_VERSION, DELTA_JSON, DELTA_TENSORS, checkDeltaManifest, checkFinite, sameShape, type DeltaManifest, type DeltaParameter,
} from './delta-format.js';

export interface DeltaTensor {
  shape: number[];
  data: Float32Array;
}

export interface Delta {
  dir: string;
  manifest: DeltaManifest;
  /** As stored (values or differences, see DeltaParameter.stored), Hugging Face layout. */
  tensors: Map<string, DeltaTensor>;
  /** sha256 of delta.safetensors: identifies the delta. */
  sha256: string;
}

/** A display name for a delta: its task, else its folder name. */
export function deltaName(d: Delta): string {
  return d.manifest.task.name ?? path.basename(path.resolve(d.dir));
}

/** Number of outputs of a delta's head (1 for regression). */
export function deltaNumLabels(m: DeltaManifest): number {
  return m.task.head.kind === 'regression' ? 1 : m.task.head.numLabels;
}

/** Read, validate and hash-check a delta folder. */
export function readDelta(dir: string): Delta {
  const file = path.join(dir, DELTA_JSON);
  let json: unknown;
  try {
    json = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new ModtuneError(`${dir}: not a delta folder (no ${DELTA_JSON}); make one with 'modtune export RUN_DIR --out DIR'`);
    throw new ModtuneError(`${file}: not valid JSON (${(e as Error).message})`);
  }
  const manifest = checkDeltaManifest(json, file);
  const tensorsFile = path.join(dir, DELTA_TENSORS);
  if (!fs.existsSync(tensorsFile)) throw new ModtuneError(`${tensorsFile}: missing; ${DELTA_JSON} lists its tensors there`);
  // The header is checked before the hash, so a truncated file gets the more telling message.
  const st = readSafetensors(tensorsFile);
  const sha256 = sha256File(tensorsFile);
  if (sha256 !== manifest.tensors.sha256) {
    throw new ModtuneError(`${tensorsFile}: sha256 ${sha256.slice(0, 12)}… does not match ${DELTA_JSON} (${manifest.tensors.sha256.slice(0, 12)}…); the file is corrupt or was replaced`);
  }
  const tensors = new Map<string, DeltaTensor>();
  for (const p of manifest.parameters) {
    const t = st.tensors.get(p.name);
    if (!t) throw new ModtuneError(`${tensorsFile}: tensor '${p.name}' listed in ${DELTA_JSON} is missing`);
    if (!sameShape(t.shape, p.shape)) throw new ModtuneError(`${tensorsFile}: tensor '${p.name}' has shape [${t.shape}], ${DELTA_JSON} says [${p.shape}]`);
    checkFinite(t.data, `${tensorsFile}: tensor '${p.name}'`);
    tensors.set(p.name, { shape: t.shape, data: t.data });
  }
  for (const name of st.tensors.keys()) {
    if (!tensors.has(name)) throw new ModtuneError(`${tensorsFile}: tensor '${name}' is not listed in ${DELTA_JSON}`);
  }
  if (manifest.tokenizer.file) {
    resolveInside(dir, manifest.tokenizer.file, { source: `${path.join(dir, DELTA_JSON)}: field 'tokenizer.file'` });
  }
  return { dir, manifest, tensors, sha256 };
}

