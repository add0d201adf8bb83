import type { ArtifactFormat } from '../../artifacts/generate.js';
import type { Manifest } from '../../artifacts/manifest.js';
import type { Batch } from '../../data/batching.js';

export type BackendName = 'native' | 'ort-web';
export type Device = 'cpu' | 'cuda';

/** Tensors by name: trainable parameters (Hugging Face names and layout) or optimizer state. */
export type TensorMap = Map<string, Float32Array>;

/** The per-update scalars the trainer computes (the schedule lives in JS, not in the graphs). */
export interface StepControl {
  learningRate: number;
  /** 1-based count of optimizer updates, including this one (AdamW bias correction). */
  step: number;
  /** 1/K when K micro-batches were accumulated into this update, else 1. */
  gradScale: number;
}

export interface BackendOptions {
  /** Absolute path of the artifacts folder, and its manifest. */
  artifactsDir: string;
  manifest: Manifest;
  device: Device;
  /** Intra-op threads; default: all cores. */
  threads?: number;
  /** Starting state; default: the artifacts' initial values and zero optimizer state. */
  parameters?: TensorMap;
  optimizer?: TensorMap;
  /** Batch size, for the "does not fit in memory" advice. */
  batchSize?: number;
  /** Micro-batches per update (--grad-accum); the last update of an epoch may have fewer. */
  gradAccum?: number;
  /** Updates already done (a resumed run's checkpoint step; 0 for a fresh run). */
  step?: number;
  /**
   * The run's seed. Native backend: the dropout masks it feeds follow from it, the update and the
   * micro-batch (so a resumed run draws what an uninterrupted one would). Default 0.
   */
  seed?: number;
  /**
   * Run the `--cache-frozen` suffix models (`manifest.native.frozenPrefix`): every batch carries
   * `hiddenStates` in place of the token ids. Native backend only.
   */
  frozenPrefix?: boolean;
  /**
   * Native backend: apply the optimizer update in place in JS on the gradient model's output
   * ('host', default), or run the train-step graph, which returns new parameters and moments.
   */
  update?: 'host' | 'graph';
}

/**
 * One way of running the artifacts. The trainer only drives this interface: it owns the data order,
 * the learning-rate schedule, evaluation, checkpoints and logs, and the backend owns the sessions
 * and the tensors that change between updates.
 *
 * Gradient accumulation over K micro-batches is K−1 `accumulate` calls then one `trainStep`.
 */
export interface TrainBackend {
  readonly name: BackendName;
  /** False once the optimizer state can no longer be read back exactly (see ort-web); default true. */
  readonly optimizerStateExact?: boolean;
  /** Forward and backward on a micro-batch; its gradient waits for the next `trainStep`. */
  accumulate(batch: Batch): Promise<{ loss: number }>;
  /**
   * Forward and backward on the last micro-batch of an update, then the optimizer update with
   * (accumulated + this batch's gradient) × gradScale; the accumulated gradient is cleared. When the
   * loss is not finite the state is left as it was before the call.
   */
  trainStep(batch: Batch, control: StepControl): Promise<{ loss: number }>;
  /** Loss and logits ([batch, numLabels], or [batch, 1] for regression) with the current parameters; unlabelled batches get a loss of NaN. */
  evaluate(batch: Batch): Promise<{ loss: number; logits: Float32Array }>;
  /** Current trainable parameters (the backend's own buffers, which the next update may overwrite: copy to keep). */
  getParameters(): TensorMap;
  /** Current optimizer state, keyed `<param>.exp_avg` / `<param>.exp_avg_sq` (empty for SGD). */
  getOptimizerState(): TensorMap;
  /** Replace parameters and (when given) optimizer state, e.g. from a checkpoint. Clears accumulated gradients. */
  setState(state: { parameters: TensorMap; optimizer?: TensorMap }): void;
  release(): Promise<void>;
}

/** How the trainer finds a backend: the artifact format it needs and how to start it. */
export interface BackendFactory {
  /** What `generateArtifacts` must write for this backend. */
  format: ArtifactFormat;
  create(opts: BackendOptions): Promise<TrainBackend>;
}
