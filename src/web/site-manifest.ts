/**
 * `site.json`: what `modtune web` serves, as the page reads it. Paths are relative to the data root
 * (`/site/`). Types only, shared by the server (./site.ts) and the page (./page/).
 */
import type { HeadSpec } from '../heads/index.js';

export const SITE_FORMAT = 'modtune-web-site';
export const SITE_VERSION = 1;

export interface SiteTokenizer {
  /** A tokenizer.json the page builds its WordPiece tokenizer from (lower-casing already applied). */
  json: string;
  /** The tokenizer file a delta names (vocab.txt or tokenizer.json as trained with), and its sha256. */
  file: string;
  fileName: string;
  sha256: string;
  lowercase: boolean;
}

export interface SiteTask {
  name: string;
  kind: 'single' | 'pair' | null;
  labels: string[] | null;
  head: HeadSpec;
  /** The delta folder: delta.json, delta.safetensors. */
  delta: string;
  tokenizer: SiteTokenizer;
  maxLength: number;
}

export interface SiteTrainingTask {
  /** GLUE task name. */
  name: string;
  kind: 'single' | 'pair';
  labels: string[] | null;
  head: HeadSpec;
  /** Key of the ort artifacts in `training` (one per head shape). */
  artifacts: string;
  /** Subsets of GLUE's train and dev TSVs (the official layout, header included). */
  train: string;
  dev: string;
  trainRows: number;
  devRows: number;
}

export interface SiteArtifacts {
  /** The artifacts' manifest.json (src/artifacts/manifest.ts). */
  manifest: string;
  training: string;
  eval: string;
  optimizer: string;
  checkpoint: string;
  /** Bytes of the four files (the page checks them against the wasm heap first). */
  bytes: number;
}

export interface SiteManifest {
  format: typeof SITE_FORMAT;
  version: number;
  modtuneVersion: string;
  base: { file: string; sha256: string; family: string; numLayers: number; hiddenSize: number; totalParameters: number };
  /** The serve-model multi-task model with its switchable tensors as plain inputs (the JS bindings cannot feed overridable initializers). */
  model: { file: string; bytes: number; maxLabels: number };
  /** Base values of the switchable tensors, fed when a task does not change them. */
  switchable: { file: string; tensors: { name: string; shape: number[]; padded: boolean }[] };
  tasks: SiteTask[];
  /** The tokenizer on-device training uses (and names in the deltas it writes). */
  tokenizer: SiteTokenizer;
  training: {
    selection: string;
    lr: number;
    maxLength: number;
    batchSize: number;
    tasks: SiteTrainingTask[];
    artifacts: Record<string, SiteArtifacts>;
  };
}
