/**
 * A delta from parameters trained on the page: delta.safetensors and delta.json as `modtune export`
 * writes them (the same schema, values stored as values), so `modtune merge`, `serve-model` and
 * `predict` accept the download.
 */
import type { Manifest } from '../../artifacts/manifest.js';
import { encodeSafetensors } from '../../bert/safetensors-format.js';
import { DELTA_FORMAT, DELTA_TENSORS, DELTA_VERSION, type DeltaManifest } from '../../export/delta-format.js';
import type { SiteManifest, SiteTrainingTask } from '../site-manifest.js';
import { sha256Hex } from './deltas.js';

export interface BuiltDelta {
  manifest: DeltaManifest;
  json: Uint8Array;
  safetensors: Uint8Array;
}

export async function buildDelta(
  artifacts: Manifest,
  params: Map<string, Float32Array>,
  site: SiteManifest,
  task: SiteTrainingTask,
  run: { steps: number; metrics: Record<string, number> | null; main: number | null },
): Promise<BuiltDelta> {
  const tensors = new Map(artifacts.parameters.map((p) => [p.name, { shape: p.shape, data: params.get(p.name)! }]));
  const pieces = encodeSafetensors(tensors, { format: 'pt', 'modtune.format': DELTA_FORMAT, 'modtune.diff': 'false' }, DELTA_TENSORS);
  const safetensors = new Uint8Array(pieces.reduce((n, p) => n + p.byteLength, 0));
  let offset = 0;
  for (const p of pieces) {
    safetensors.set(p, offset);
    offset += p.byteLength;
  }
  const m = artifacts;
  const manifest: DeltaManifest = {
    format: DELTA_FORMAT,
    version: DELTA_VERSION,
    modtuneVersion: m.modtuneVersion,
    createdAt: new Date().toISOString(),
    base: { sha256: m.base.sha256, file: m.base.file ?? null, family: m.base.family, numLayers: m.base.numLayers, hiddenSize: m.base.hiddenSize, totalParameters: m.base.totalParameters },
    task: { name: task.name, kind: task.kind, labels: m.task.labels, head: m.task.head, newHead: !m.task.headReused },
    selection: { spec: m.selection.spec, trainableCount: m.selection.trainableCount, totalCount: m.selection.totalCount, freezeHead: m.selection.freezeHead, seed: m.selection.seed },
    parameters: m.parameters.map((p) => ({ name: p.name, shape: p.shape, module: p.module, layer: p.layer, role: p.role, stored: 'value', trainableEntries: p.trainableEntries, trained: true })),
    tokenizer: { file: site.tokenizer.fileName, sha256: site.tokenizer.sha256, lowercase: site.tokenizer.lowercase, maxLength: m.tokenizer.maxLength },
    checkpoint: { name: 'on-device', step: run.steps, metrics: run.metrics, main: run.main },
    diff: false,
    tensors: { file: DELTA_TENSORS, sha256: await sha256Hex(safetensors), bytes: safetensors.byteLength },
  };
  return { manifest, json: new TextEncoder().encode(JSON.stringify(manifest, null, 2) + '\n'), safetensors };
}
