/**
 * The module taxonomy of a BERT-family encoder and the records that describe where each learnable
 * tensor of an ONNX model sits in it.
 */

export type ModuleName =
  | 'embeddings'
  | 'embeddings-layernorm'
  | 'query'
  | 'key'
  | 'value'
  | 'attention-output'
  | 'attention-layernorm'
  | 'intermediate'
  | 'output'
  | 'output-layernorm'
  | 'pooler'
  | 'classifier';

/** Every module, in the order data flows through a model (display order too). */
export const MODULE_NAMES: readonly ModuleName[] = [
  'embeddings',
  'embeddings-layernorm',
  'query',
  'key',
  'value',
  'attention-output',
  'attention-layernorm',
  'intermediate',
  'output',
  'output-layernorm',
  'pooler',
  'classifier',
];

/** Modules that live inside an encoder layer (they have a layer index). */
export const LAYER_MODULES: readonly ModuleName[] = MODULE_NAMES.filter(
  (m) => !['embeddings', 'embeddings-layernorm', 'pooler', 'classifier'].includes(m),
);

export type ParameterRole = 'weight' | 'bias';

export interface ParameterInfo {
  /**
   * The value the graph reads: an initializer name. For a tensor that the exporter shared between
   * several parameters behind `Identity` nodes (see `sharedBy`), the `Identity` output that stands
   * for this parameter, until `unshareParameters` turns it into an initializer of the same name.
   */
  name: string;
  /** Hugging Face (PyTorch) name with the model prefix, e.g. `bert.encoder.layer.0.attention.self.query.weight`. */
  hfName: string;
  module: ModuleName;
  /** Encoder layer index; null outside the encoder (embeddings, pooler, classifier). */
  layer: number | null;
  role: ParameterRole;
  /** Shape as stored in the graph. */
  shape: number[];
  /** Shape in the Hugging Face layout (Linear weight: [out, in]). */
  hfShape: number[];
  /** True when the stored tensor is the transpose of the Hugging Face one. */
  transposed: boolean;
  size: number;
  /** `name`s of the other parameters backed by the same stored tensor (exporter dedup). */
  sharedBy?: string[];
}

/** A float tensor that looks learnable but is not part of the selectable modules. */
export interface UnplacedTensor {
  /** Initializer (or Identity output) name in the graph. */
  name: string;
  /** Hugging Face name when the tensor was recognised (e.g. a task head that is not a sequence classifier). */
  hfName?: string;
  shape: number[];
  size: number;
  /** Why it has no module: a recognised non-classifier head, or what was looked for. */
  reason: string;
}

export type ModelFamily = 'bert' | 'roberta' | 'electra' | 'distilbert' | 'unknown-bert-like';

export interface ModelStructure {
  family: ModelFamily;
  numLayers: number;
  hiddenSize: number;
  /** Attention heads, when the config metadata or the attention Reshape constants tell. */
  numHeads?: number;
  /** Rows of the word-embedding table. */
  vocabSize?: number;
  /** Width of the FFN (intermediate) layer. */
  intermediateSize?: number;
  /** Placed parameters, in graph initializer order. */
  parameters: ParameterInfo[];
  /** Learnable-looking tensors that belong to no module (other task heads, unrecognised tensors). */
  unplaced: UnplacedTensor[];
  /** Entries of every placed parameter plus every unplaced tensor (shared tensors once per parameter). */
  totalCount: number;
  /** A parameter's current values in the stored layout (used by magnitude selections). */
  values?: (p: ParameterInfo) => Float32Array;
}

export interface Selection {
  spec: string;
  /** Selected parameters in structure order; masked ones train only where their mask is 1. */
  parameters: ParameterInfo[];
  /** Partial selections (`top=`/`random=`): param name → one byte per stored entry, 1 = trains. */
  masks: Map<string, Uint8Array>;
  trainableCount: number;
  totalCount: number;
}
