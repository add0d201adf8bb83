/**
 * Frozen layers computed once (`train --cache-frozen`): when every trainable parameter sits in
 * encoder layer k or above, the embeddings and layers 0…k−1 compute the same values for an example
 * at every step (their weights never change and, here, they run without dropout). The graph is cut
 * at the tensor entering layer k — the output of layer k−1's output LayerNorm — into a prefix model
 * (token ids → that tensor) that runs once per example, and suffix models in which the tensor is the
 * graph input `hidden_states`. The attention-mask path stays in the suffix, computed from
 * `attention_mask`, and parameters keep their names, so everything after training is unchanged.
 */
import { ModtuneError } from '../../errors.js';
import { DataType } from '../../onnx/dtype.js';
import { cloneModel, isOnnxOp, type Dim, type Graph, type Model, type Node } from '../../onnx/graph.js';
import { findEncoder } from '../../heads/index.js';
import { constantValues } from '../../heads/patterns.js';
import type { ModuleName } from '../../modules/types.js';
import { LABELS } from '../../heads/loss.js';
import { buildNativeModels, type NativeParam } from './build.js';
import type { OptimizerConfig } from './optimizer.js';

/** Graph input name (and manifest role) of the cached hidden states in the suffix models. */
export const HIDDEN_STATES = 'hidden_states';

const BELOW_EVERY_LAYER: readonly ModuleName[] = ['embeddings', 'embeddings-layernorm'];

/** Where a selection's frozen prefix ends: the first encoder layer holding a trainable parameter. */
export type FrozenPrefixPlan = { layer: number } | { nothing: string };

/**
 * The first encoder layer k in which a trainable parameter sits (numLayers when only the pooler or
 * the classifier train), or why there is nothing worth caching: a trainable embedding sits below
 * every layer, and with k = 0 only the embedding lookup would be saved, at the cost of a hidden
 * vector per token.
 */
export function planFrozenPrefix(params: ReadonlyArray<{ name: string; module: ModuleName | string; layer: number | null }>, numLayers: number): FrozenPrefixPlan {
  const embedding = params.find((p) => BELOW_EVERY_LAYER.includes(p.module as ModuleName));
  if (embedding) return { nothing: `the selection trains the embeddings (${embedding.name}), which no frozen layer lies below` };
  let layer = numLayers;
  let lowest: string | undefined;
  for (const p of params) {
    if (p.layer !== null && p.layer < layer) {
      layer = p.layer;
      lowest = p.name;
    }
  }
  if (layer === 0) return { nothing: `the selection trains encoder layer 0 (${lowest}); only the embedding lookup lies below it` };
  return { layer };
}

/**
 * The value entering encoder layer `layer` (≥ 1): the output of layer `layer − 1`'s output
 * LayerNorm, found in a model without dropout (train, eval and infer models share value names).
 */
export function frozenPrefixCut(model: Model, layer: number, label: string): { value: string; hiddenSize: number } {
  const g = model.graph;
  const enc = findEncoder(g, constantValues(g), label);
  if (!Number.isInteger(layer) || layer < 1 || layer > enc.numLayers) {
    throw new ModtuneError(`${label}: cannot cut before encoder layer ${layer}: the model has layers 0–${enc.numLayers - 1}`);
  }
  const residual = enc.residuals[2 * layer - 1];
  if (!residual || residual.kind !== 'ffn') throw new ModtuneError(`${label}: encoder layer ${layer - 1} has no output LayerNorm to cut after`);
  return { value: residual.layerNorm.output, hiddenSize: enc.hiddenSize };
}

/**
 * Take out the Dropout nodes below the cut (those `cut` depends on): the frozen layers run once,
 * so they cannot drop out differently at every step. Every training model of an artifacts folder
 * built this way computes the same thing, cached or not. Returns how many were taken out.
 */
export function removeDropoutsBelow(model: Model, cut: string): number {
  const g = model.graph;
  if (!g.producer(cut)) throw new ModtuneError(`graph '${g.name}': value '${cut}' is not computed in the train model`);
  const below = [...g.ancestors(cut)].filter((n) => isOnnxOp(n, 'Dropout'));
  for (const n of below) {
    const [input, output] = [n.inputs[0]!, n.outputs[0]!];
    g.replaceUses(output, input);
    g.valueInfo.delete(output);
  }
  g.removeNodes(below);
  g.removeDeadNodes();
  return below.length;
}

function batchAndSequence(g: Graph): [Dim, Dim] {
  const mask = g.inputs.find((i) => i.name === 'attention_mask') ?? g.inputs.find((i) => i.name === 'input_ids');
  return [mask?.shape?.[0] ?? 'batch', mask?.shape?.[1] ?? 'sequence'];
}

/** Inputs nothing reads any more (the token inputs of a suffix, the parameters of a prefix). */
function dropUnreadInputs(g: Graph): void {
  g.inputs = g.inputs.filter((i) => g.consumers(i.name).length > 0 || g.isGraphOutput(i.name));
}

/**
 * The suffix of a train or eval model whose trainable parameters are graph inputs: `cut` becomes
 * the graph input `hidden_states` [batch, sequence, hidden]; what only computed it is removed, and
 * so are the inputs nothing reads now. Every name in `keep` (the trainable parameters, the labels)
 * must still be read, which proves that nothing trainable sat below the cut.
 */
export function suffixModel(model: Model, cut: string, hiddenSize: number, keep: readonly string[], label: string): Model {
  const m = cloneModel(model);
  const g = m.graph;
  if (!g.producer(cut)) throw new ModtuneError(`${label}: value '${cut}' is not computed in the model`);
  if (g.isGraphOutput(cut)) throw new ModtuneError(`${label}: value '${cut}' is a graph output; cannot make it an input`);
  const [batch, sequence] = batchAndSequence(g);
  g.reserveName(HIDDEN_STATES);
  g.replaceUses(cut, HIDDEN_STATES);
  g.valueInfo.delete(cut);
  g.inputs.push({ name: HIDDEN_STATES, elemType: DataType.FLOAT, shape: [batch, sequence, hiddenSize] });
  g.removeDeadNodes();
  dropUnreadInputs(g);
  g.topologicalSort();
  const lost = keep.filter((name) => g.consumers(name).length === 0);
  if (lost.length) throw new ModtuneError(`${label}: ${lost.slice(0, 3).join(', ')} would no longer be read after cutting at '${cut}'; a trainable parameter sits below the cut`);
  return m;
}

/**
 * The prefix: the model's token inputs → `hidden_states` (the value `cut`), every weight an
 * initializer. Built from the eval model (no dropout), whose exposed parameters all sit above the cut.
 */
export function prefixModel(model: Model, cut: string, hiddenSize: number, label: string): Model {
  const m = cloneModel(model);
  const g = m.graph;
  if (!g.producer(cut)) throw new ModtuneError(`${label}: value '${cut}' is not computed in the model`);
  const [batch, sequence] = batchAndSequence(g);
  g.outputs = [{ name: cut, elemType: DataType.FLOAT }];
  g.removeDeadNodes();
  g.reserveName(HIDDEN_STATES);
  for (const n of g.nodes) n.outputs = n.outputs.map((o) => (o === cut ? HIDDEN_STATES : o));
  g.invalidate();
  g.valueInfo.delete(cut);
  g.outputs = [{ name: HIDDEN_STATES, elemType: DataType.FLOAT, shape: [batch, sequence, hiddenSize] }];
  dropUnreadInputs(g);
  for (const i of g.inputs) {
    if (i.elemType === DataType.FLOAT) throw new ModtuneError(`${label}: the frozen prefix still reads the float input '${i.name}'; a trainable parameter sits below the cut`);
  }
  g.topologicalSort();
  return m;
}

/** The `--cache-frozen` models of a headed train/eval pair whose trainable parameters are inputs. */
export interface FrozenPrefixModels {
  prefix: Model;
  trainStep: Model;
  gradient: Model;
  eval: Model;
  /** The suffix training models' dropout-mask inputs and ratios. */
  dropoutMasks: Map<string, number>;
}

/**
 * The prefix (from the eval model) and the native training models built, like the full ones, on
 * the suffixes of the train and eval models.
 */
export function buildFrozenPrefixModels(
  train: Model, evalModel: Model, params: NativeParam[], optimizer: OptimizerConfig,
  cut: { value: string; hiddenSize: number }, label: string,
): FrozenPrefixModels {
  const keep = [...params.map((p) => p.name), LABELS];
  const suffix = (m: Model) => suffixModel(m, cut.value, cut.hiddenSize, keep, label);
  const prefix = prefixModel(evalModel, cut.value, cut.hiddenSize, label);
  // buildNativeModels passes its infer model through untouched; the prefix stands in for it.
  const { trainStep, gradient, eval: evalOut, dropoutMasks } = buildNativeModels(suffix(train), suffix(evalModel), prefix, params, optimizer);
  return { prefix, trainStep, gradient, eval: evalOut, dropoutMasks };
}
