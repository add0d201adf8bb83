/**
 * What a sweep needs to know about its base model before any cell runs: its identity (sha256),
 * its depth (for the layer-wise presets), and, for every selection, that it exists in the model and
 * how many parameters it trains (which picks its `--lr auto` grid).
 */
import { ModtuneError } from '../errors.js';
import { resolveHead } from '../artifacts/generate.js';
import { attachHead } from '../heads/index.js';
import { discoverParameters, selectParameters } from '../modules/index.js';
import type { ModelStructure } from '../modules/types.js';
import { modelSha256 } from '../onnx/hash.js';
import { loadModel } from '../onnx/io.js';
import type { Model } from '../onnx/graph.js';

export interface SelectionCount {
  trainableCount: number;
  totalCount: number;
}

export interface BaseModel {
  file: string;
  sha256: string;
  /** External-data files beside the .onnx (a distributed sweep needs a single-file model). */
  externalFiles: string[];
  numLayers: number;
  model: Model;
  /** Discovered on the model as it is (no task head attached). */
  structure: ModelStructure;
}

export function loadBaseModel(file: string): BaseModel {
  const model = loadModel(file);
  const externalFiles = model.externalDataFiles ?? [];
  const structure = discoverParameters(model, { label: file });
  return { file, sha256: modelSha256(file, externalFiles), externalFiles, numLayers: structure.numLayers, model, structure };
}

/**
 * Resolve every selection against the model with the first task's head attached (as `train` will):
 * an unknown module, a layer out of range or an empty selection fails here, naming the selection.
 */
export function countSelections(
  base: BaseModel, selections: string[], task: string, opts: { newHead?: boolean; freezeHead?: boolean; seed?: number },
): Map<string, SelectionCount> {
  const { head } = resolveHead({ task });
  const headed = attachHead(base.model, head, { newHead: opts.newHead, seed: opts.seed, dropout: 0, label: base.file });
  const structure = discoverParameters(headed.train, { label: base.file });
  const out = new Map<string, SelectionCount>();
  for (const spec of selections) {
    try {
      const s = selectParameters(structure, spec, { seed: opts.seed, freezeHead: opts.freezeHead, values: structure.values });
      out.set(spec, { trainableCount: s.trainableCount, totalCount: s.totalCount });
    } catch (e) {
      if (e instanceof ModtuneError) throw new ModtuneError(`selection '${spec}' in the grid: ${e.message.replace(/^--train '[^']*': /, '')}`, { cause: e });
      throw e;
    }
  }
  return out;
}

/**
 * Every task's head must fit the model (a model with a 2-label head cannot take STS-B's regression
 * head without --new-head): checked once per distinct head, before any cell runs.
 */
export function checkHeads(base: BaseModel, tasks: string[], opts: { newHead?: boolean; seed?: number }): void {
  const seen = new Set<string>();
  for (const task of tasks) {
    const { head } = resolveHead({ task });
    const key = JSON.stringify(head);
    if (seen.has(key)) continue;
    seen.add(key);
    try {
      attachHead(base.model, head, { newHead: opts.newHead, seed: opts.seed, dropout: 0, label: base.file });
    } catch (e) {
      if (e instanceof ModtuneError) throw new ModtuneError(`task ${task} in the grid: ${e.message}`, { cause: e });
      throw e;
    }
  }
}
