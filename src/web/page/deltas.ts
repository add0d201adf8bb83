/**
 * Deltas on the page: served ones (fetched) and dropped ones (files), checked like `modtune
 * predict` checks them — the delta.json schema, the tensors' sha256 and shapes, the base it was
 * made for, and that its tensors are switchable in the served model — with one-line messages.
 */
import { parseSafetensors } from '../../bert/safetensors-format.js';
import { bertTokenizerJson, parseVocab, type TokenizerJson } from '../../data/tokenizer-json.js';
import { checkDeltaManifest, checkDeltaTensors, DELTA_JSON, DELTA_TENSORS, sameShape, type DeltaManifest } from '../../export/delta-format.js';
import type { SiteManifest } from '../site-manifest.js';

export interface DroppedFile {
  name: string;
  bytes: Uint8Array;
}

export interface LoadedDelta {
  manifest: DeltaManifest;
  tensors: Map<string, { shape: number[]; data: Float32Array }>;
  /** A tokenizer that came with the delta (dropped vocab.txt / tokenizer.json), if any. */
  tokenizer?: TokenizerJson;
}

export async function sha256Hex(bytes: Uint8Array): Promise<string> {
  if (!globalThis.crypto?.subtle) throw new Error('this page is not in a secure context (https or localhost), so it cannot check sha256 hashes; open it through http://127.0.0.1 or localhost');
  const digest = await crypto.subtle.digest('SHA-256', bytes as unknown as BufferSource);
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, '0')).join('');
}

/** Read a delta from its files (delta.json, delta.safetensors, optionally the tokenizer file it names). */
export async function readDeltaFiles(files: DroppedFile[], site: SiteManifest): Promise<LoadedDelta> {
  const byName = new Map(files.map((f) => [f.name, f]));
  const json = byName.get(DELTA_JSON);
  const st = byName.get(DELTA_TENSORS);
  if (!json || !st) {
    throw new Error(`a delta needs ${DELTA_JSON} and ${DELTA_TENSORS} together (got ${files.map((f) => f.name).join(', ') || 'nothing'}); drop both files of the folder 'modtune export' wrote`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder().decode(json.bytes));
  } catch (e) {
    throw new Error(`${DELTA_JSON}: not valid JSON (${(e as Error).message})`);
  }
  const manifest = checkDeltaManifest(parsed, DELTA_JSON);
  if (manifest.base.sha256 !== site.base.sha256) {
    throw new Error(`${DELTA_JSON}: made for base sha256 ${manifest.base.sha256.slice(0, 12)}…, but this page serves ${site.base.file} (${site.base.sha256.slice(0, 12)}…); it belongs to another model`);
  }
  const sha = await sha256Hex(st.bytes);
  if (sha !== manifest.tensors.sha256) {
    throw new Error(`${DELTA_TENSORS}: sha256 ${sha.slice(0, 12)}… does not match ${DELTA_JSON} (${manifest.tensors.sha256.slice(0, 12)}…); the file is corrupt or from another delta`);
  }
  const tensors = checkDeltaTensors(manifest, parseSafetensors(st.bytes, DELTA_TENSORS).tensors, DELTA_TENSORS);
  checkServable(manifest, site);
  let tokenizer: TokenizerJson | undefined;
  const tokFile = manifest.tokenizer.file ? byName.get(manifest.tokenizer.file) : undefined;
  if (tokFile) tokenizer = tokenizerJson(tokFile, manifest.tokenizer.lowercase);
  return { manifest, tensors, tokenizer };
}

/** Its tensors are switchable inputs of the served model, its head fits. */
export function checkServable(m: DeltaManifest, site: SiteManifest): void {
  const labels = m.task.head.kind === 'regression' ? 1 : m.task.head.numLabels;
  if (labels > site.model.maxLabels) {
    throw new Error(`${DELTA_JSON}: the task has ${labels} labels, the served model's head at most ${site.model.maxLabels}; restart 'modtune web' with this delta in --deltas`);
  }
  const switchable = new Map(site.switchable.tensors.map((s) => [s.name, s]));
  for (const p of m.parameters) {
    const s = switchable.get(p.name);
    if (!s) throw new Error(`${DELTA_JSON}: parameter '${p.name}' is not switchable in the served model; restart 'modtune web' with this delta in --deltas`);
    const fits = sameShape(p.shape, s.shape) || (s.padded && p.shape.length === s.shape.length && p.shape.slice(1).every((x, i) => x === s.shape[i + 1]));
    if (!fits) throw new Error(`${DELTA_JSON}: parameter '${p.name}' has shape [${p.shape}], the served model's input [${s.shape}]`);
  }
}

/** A dropped vocab.txt or tokenizer.json as the tokenizer.json the page's tokenizer reads. */
export function tokenizerJson(file: DroppedFile, lowercase: boolean): TokenizerJson {
  const text = new TextDecoder().decode(file.bytes);
  if (file.name.endsWith('.json')) {
    let json: TokenizerJson;
    try {
      json = JSON.parse(text) as TokenizerJson;
    } catch (e) {
      throw new Error(`${file.name}: not valid JSON (${(e as Error).message})`);
    }
    if (!json?.model || typeof json.model.vocab !== 'object') throw new Error(`${file.name}: no model.vocab, expected a Hugging Face tokenizer.json`);
    json.added_tokens ??= [];
    return json.normalizer ? { ...json, normalizer: { ...json.normalizer, lowercase } } : json;
  }
  return bertTokenizerJson(parseVocab(text, file.name).vocab, { lowercase, file: file.name });
}
