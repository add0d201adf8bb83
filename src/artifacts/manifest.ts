/**
 * `manifest.json`: the documented contract of an artifacts folder. A program in any language can
 * train with the files it lists and ONNX Runtime alone: it says which file is which model, what
 * every input and output means, which parameters train (with their Hugging Face names), the
 * optimizer and its hyper-parameters, the task and labels, and the tokenizer.
 */
export const MANIFEST_FORMAT = 'modtune-artifacts';
/**
 * 2: the native training models take their dropout masks as inputs (role `dropout_mask`); gradient
 * models give an embedding table's gradient as rows (roles `grad_rows`, `grad_row_indices`).
 */
export const MANIFEST_VERSION = 2;

export type IoRole =
  | 'input_ids' | 'attention_mask' | 'token_type_ids' | 'labels'
  /** Masked-LM pre-training: flat indices (row × sequence + column) of the predicted positions. */
  | 'masked_positions'
  /** `--cache-frozen` suffix models: the cached output of the frozen layers, float [batch, sequence, hidden]. */
  | 'hidden_states'
  /** Native training models: where a Dropout was, bool [shape of its input], true = kept (dropout-inputs.ts). */
  | 'dropout_mask'
  | 'loss' | 'logits'
  | 'parameter' | 'parameter_updated'
  | 'exp_avg' | 'exp_avg_updated' | 'exp_avg_sq' | 'exp_avg_sq_updated'
  | 'grad_accumulator' | 'grad_accumulator_updated'
  /**
   * Gradient models, an embedding table's gradient: float [..., row width] gradients of the rows
   * looked up and int64 [..., 1] their row indices (the same row may repeat: add them all).
   */
  | 'grad_rows' | 'grad_row_indices'
  | 'learning_rate' | 'step' | 'grad_scale';

export interface IoSpec {
  name: string;
  role: IoRole;
  dtype: 'float32' | 'int64' | 'bool';
  /** Numbers, or symbolic names (`batch`, `sequence`). */
  shape: (number | string)[];
  /** For parameter-related roles: the parameter's Hugging Face name. */
  parameter?: string;
  /** For `dropout_mask`: the probability that an entry is dropped (false). */
  ratio?: number;
}

export interface ModelSpec {
  file: string;
  inputs: IoSpec[];
  outputs: IoSpec[];
}

export interface ManifestParameter {
  /** Hugging Face name; also the graph input name in every training model. */
  name: string;
  module: string;
  layer: number | null;
  role: 'weight' | 'bias';
  /** Hugging Face layout. */
  shape: number[];
  size: number;
  /** Entries that may change (size unless a top=/random= mask restricts it). */
  trainableEntries: number;
  /** Key of this parameter's 0/1 mask in `masks.safetensors`, or null. */
  mask: string | null;
  weightDecay: boolean;
  /** The initializer that held it in the base model, and whether it was stored transposed there. */
  baseInitializer: string;
  baseTransposed: boolean;
}

export interface LrSchedule {
  kind: 'linear' | 'constant';
  warmupSteps: number;
  /** Steps over which linear decay reaches 0 (0: unknown until training starts). */
  totalSteps: number;
}

export interface Manifest {
  format: typeof MANIFEST_FORMAT;
  version: number;
  modtuneVersion: string;
  createdAt: string;
  base: { file: string; sha256: string; family: string; numLayers: number; hiddenSize: number; totalParameters: number; /** Rows of the word-embedding table, when known. */ vocabSize?: number; /** The longest sequence its position embeddings cover, when known. */ maxPositions?: number };
  task: { name: string | null; head: { kind: 'classification'; numLabels: number } | { kind: 'regression' }; labels: string[] | null; headReused: boolean };
  selection: { spec: string; trainableCount: number; totalCount: number; freezeHead: boolean; seed: number };
  parameters: ManifestParameter[];
  /** safetensors files (relative paths): initial trainable values (HF names, HF layout) and masks. */
  initialValues: string;
  masks: string | null;
  optimizer: {
    name: 'adamw' | 'sgd'; lr: number; beta1: number; beta2: number; epsilon: number; weightDecay: number; schedule: LrSchedule;
    /**
     * Global gradient-norm clipping in every model that updates (torch.nn.utils.clip_grad_norm_):
     * 0 = none. Absent in folders built before clipping existed, which do not clip.
     */
    maxGradNorm?: number;
  };
  dropout: {
    override: number | null; rates: { hidden: number; attention: number; classifier: number };
    /** Built with `--cache-frozen`: no training model drops out below this encoder layer (the frozen prefix). */
    offBelowLayer?: number;
  };
  tokenizer: { file: string | null; lowercase: boolean; maxLength: number };
  native?: {
    /** Forward + backward + optimizer update in one graph (accumulated gradient in, updated state out). */
    trainStep: ModelSpec;
    /** Forward + backward only: adds this batch's gradient to the accumulators (gradient accumulation). */
    gradient: ModelSpec;
    /** Loss and logits with the trainable parameters as inputs. */
    eval: ModelSpec;
    /** Logits only; every weight an initializer (the base values). */
    infer: ModelSpec;
    /** The frozen weights, stored once and shared by the four models as ONNX external data. */
    weights: string;
    /** Built with `--cache-frozen` when a frozen encoder layer lies below every trainable parameter. */
    frozenPrefix?: FrozenPrefixModels;
  };
  ort?: OrtFiles & {
    /**
     * The one weight decay ORT's optimizer applies to all trainable parameters: the requested value
     * when every selected parameter decays under Hugging Face's rule, else 0.
     */
    weightDecay: number;
  };
}

/**
 * The models of `train --cache-frozen`: `prefix` computes the embeddings and encoder layers
 * 0…layer−1 (no dropout, every weight an initializer) into `hidden_states`, once per example;
 * `trainStep`, `gradient` and `eval` are the native models of the same names with that tensor as
 * their input (role `hidden_states`, padded with zeros past each example's length) in place of the
 * token ids. They share `native.weights`.
 */
export interface FrozenPrefixModels {
  /** The first encoder layer the suffix models compute. */
  layer: number;
  /** Width of `hidden_states`. */
  hiddenSize: number;
  prefix: ModelSpec;
  trainStep: ModelSpec;
  gradient: ModelSpec;
  eval: ModelSpec;
}

/** The ORT on-device-training artifacts of a folder (paths relative to it). */
export interface OrtFiles {
  training: string;
  eval: string;
  optimizer: string;
  checkpoint: string;
  /** Parameter order of getContiguousParameters(true). */
  trainableOrder: string[];
  userInputs: string[];
  userOutputs: string[];
}
