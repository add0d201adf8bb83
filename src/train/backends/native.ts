/**
 * The native backend: the artifacts' standard-ops models (`native/gradient.onnx`, `eval.onnx`, and
 * `train_step.onnx` with `update: 'graph'`) on onnxruntime-node, CPU or CUDA. The changing state
 * (trainable parameters, AdamW moments, accumulated gradients) lives in JS Float32Arrays, fed as
 * tensors over those arrays (no copy). By default an update runs the gradient model and applies the
 * optimizer to the parameters and moments in place (host-update.ts); with `update: 'graph'` the
 * train-step model does it and its outputs become the next state.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { ModtuneError } from '../../errors.js';
import { readSafetensors } from '../../bert/safetensors.js';
import type { IoSpec, Manifest, ModelSpec } from '../../artifacts/manifest.js';
import type { Batch } from '../../data/batching.js';
import type { BackendFactory, BackendOptions, Device, StepControl, TensorMap, TrainBackend } from './types.js';
import { translateCreateError, translateRunError } from './ort-errors.js';
import { checkCudaProvider } from './cuda-provider.js';
import { hostUpdate, type HostTensor } from './host-update.js';
import type { OptimizerConfig } from '../../artifacts/native/optimizer.js';
import { drawDropoutMask } from './dropout-masks.js';
import { RowGradient } from './row-gradients.js';

type Feeds = Record<string, ort.Tensor>;
type ModelKey = 'trainStep' | 'gradient' | 'eval';

const WHAT: Record<ModelKey, string> = { trainStep: 'a training step', gradient: 'a gradient-accumulation step', eval: 'evaluation' };

export const nativeBackend: BackendFactory = {
  format: 'native',
  create: (opts) => NativeBackend.create(opts),
};

/** The initial trainable values of an artifacts folder, checked against its manifest. */
export function readInitialParameters(artifactsDir: string, manifest: Manifest): TensorMap {
  const file = path.join(artifactsDir, manifest.initialValues);
  const st = readSafetensors(file);
  return checkParameters(manifest, new Map([...st.tensors].map(([k, t]) => [k, t.data])), file);
}

/** `tensors` restricted to the manifest's parameters, each present with its size. */
export function checkParameters(manifest: Manifest, tensors: TensorMap, label: string): TensorMap {
  const out: TensorMap = new Map();
  for (const p of manifest.parameters) {
    const t = tensors.get(p.name);
    if (!t) throw new ModtuneError(`${label}: trainable parameter '${p.name}' is missing`);
    if (t.length !== p.size) throw new ModtuneError(`${label}: parameter '${p.name}' has ${t.length} values, the artifacts expect ${p.size} (shape [${p.shape.join(', ')}])`);
    out.set(p.name, t);
  }
  return out;
}

/** Optimizer-state names the native AdamW graphs read, per parameter. */
export function momentNames(manifest: Manifest): string[] {
  if (manifest.optimizer.name !== 'adamw') return [];
  return manifest.parameters.flatMap((p) => [`${p.name}.exp_avg`, `${p.name}.exp_avg_sq`]);
}

export class NativeBackend implements TrainBackend {
  readonly name = 'native' as const;
  private params: TensorMap;
  private moments: TensorMap;
  /** Zero gradients, allocated once: the accumulator input of every update without accumulation (read-only). */
  private readonly zeros: TensorMap;
  private accumulators: TensorMap;
  private readonly sessions = new Map<ModelKey, ort.InferenceSession>();
  private readonly sizes: Map<string, number>;
  private readonly shapes: Map<string, number[]>;
  /** Where updates happen: in place here ('host', the default) or in the train-step graph. */
  private readonly update: 'host' | 'graph';
  /** The 0/1 masks of top=/random= selections, by parameter (host updates only). */
  private readonly masks: TensorMap;
  /** The manifest's optimizer, as the host update takes it. */
  private readonly optimizer: OptimizerConfig;
  /** Updates taken, and micro-batches run since the last: the key of the next forward's dropout masks. */
  private updates: number;
  private micro = 0;
  /** The training models' dropout-mask inputs, checked once, by name. */
  private readonly dropoutSites = new Map<string, DropoutSite>();
  /** Dropout-mask buffers by input name, reused from batch to batch. */
  private readonly dropoutBuffers = new Map<string, Uint8Array>();
  /** The gradient sums of parameters whose gradient comes as rows (embedding tables), by parameter. */
  private readonly rowGradients = new Map<string, RowGradient>();

  private constructor(private readonly opts: BackendOptions, private readonly native: Record<ModelKey, ModelSpec>) {
    const m = opts.manifest;
    this.update = opts.update ?? 'host';
    this.sizes = new Map(m.parameters.map((p) => [p.name, p.size]));
    this.shapes = new Map(m.parameters.map((p) => [p.name, p.shape]));
    this.params = opts.parameters ? this.own(checkParameters(m, opts.parameters, 'initial parameters')) : readInitialParameters(opts.artifactsDir, m);
    this.moments = new Map(momentNames(m).map((n) => [n, new Float32Array(this.sizes.get(n.replace(/\.exp_avg(_sq)?$/, ''))!)]));
    if (opts.optimizer) this.setOptimizer(opts.optimizer);
    this.masks = this.update === 'host' ? readMasks(opts.artifactsDir, m) : new Map();
    const o = m.optimizer;
    this.optimizer = { name: o.name, beta1: o.beta1, beta2: o.beta2, epsilon: o.epsilon, weightDecay: o.weightDecay, maxGradNorm: o.maxGradNorm ?? 0 };
    for (const spec of [native.gradient, native.trainStep]) {
      for (const input of spec.inputs) if (input.role === 'dropout_mask') this.dropoutSites.set(input.name, checkDropoutSite(input, spec));
    }
    for (const o of native.gradient.outputs) {
      if (o.role !== 'grad_rows') continue;
      const shape = this.shapes.get(o.parameter ?? '');
      if (!shape || shape.length !== 2) throw new ModtuneError(`${native.gradient.file}: output '${o.name}' gives rows of '${o.parameter}', which is not a trainable table in manifest.json`);
      this.rowGradients.set(o.parameter!, new RowGradient(o.parameter!, shape[0]!, shape[1]!));
    }
    // One zero buffer, the largest parameter's size, viewed by every parameter's zero accumulator:
    // ONNX Runtime only reads them and nothing here writes them. A buffer per parameter was resident
    // memory the size of the model (bert-base `full` at 8 × 128: peak RSS 3.1–3.2 GB, shared 2.8 GB).
    // A row-gradient table's sum is zero between updates: it serves as its own zero accumulator.
    const zero = new Float32Array(m.parameters.reduce((max, p) => (this.rowGradients.has(p.name) ? max : Math.max(max, p.size)), 0));
    this.zeros = new Map(m.parameters.map((p) => [p.name, this.rowGradients.get(p.name)?.sum ?? zero.subarray(0, p.size)]));
    this.accumulators = this.zeros;
    this.updates = opts.step ?? 0;
  }

  static async create(opts: BackendOptions): Promise<NativeBackend> {
    const native = opts.manifest.native;
    if (!native) throw new ModtuneError(`${opts.artifactsDir}: no native models in these artifacts (manifest.json has no 'native' section); rebuild them with the native format`);
    let models: Record<ModelKey, ModelSpec> = native;
    if (opts.frozenPrefix) {
      // The suffix models: batches carry the cached hidden states instead of token ids.
      if (!native.frozenPrefix) throw new ModtuneError(`${opts.artifactsDir}: no frozen-prefix models in these artifacts (manifest.json has no 'native.frozenPrefix'); rebuild them with --cache-frozen`);
      models = native.frozenPrefix;
    }
    const backend = new NativeBackend(opts, models);
    // The updating session is needed at once; loading it now surfaces CUDA/file problems early.
    await backend.session(backend.update === 'host' ? 'gradient' : 'trainStep');
    return backend;
  }

  async accumulate(batch: Batch): Promise<{ loss: number }> {
    const spec = this.native.gradient;
    const out = await this.run('gradient', this.feeds(spec, batch, undefined, this.forwardKey(false)), batch, stateFetches(spec));
    const loss = scalarOf(out, spec);
    if (!Number.isFinite(loss)) {
      this.clearAccumulated();
      return { loss };
    }
    this.accumulators = this.gradientSums(out, spec);
    return { loss };
  }

  /**
   * The accumulated gradients after a gradient-model run, by parameter: its accumulator outputs as
   * they are (accumulator inputs + this batch), row gradients added into their tables' sums.
   */
  private gradientSums(out: ort.InferenceSession.ReturnType, spec: ModelSpec): TensorMap {
    const sums: TensorMap = new Map();
    for (const o of spec.outputs) {
      if (o.role === 'grad_accumulator_updated') sums.set(o.parameter!, this.floatOutput(out, o));
      if (o.role !== 'grad_rows') continue;
      const table = this.rowGradients.get(o.parameter!)!;
      const indexSpec = spec.outputs.find((x) => x.role === 'grad_row_indices' && x.parameter === o.parameter);
      const [grads, indices] = [out[o.name]?.data, indexSpec && out[indexSpec.name]?.data];
      if (!(grads instanceof Float32Array) || !(indices instanceof BigInt64Array)) {
        throw new ModtuneError(`${spec.file}: the row gradient of '${o.parameter}' needs float32 output '${o.name}' and its int64 row indices`);
      }
      table.add(grads, indices, spec.file);
      sums.set(o.parameter!, table.sum);
    }
    return sums;
  }

  /** Drop what was accumulated since the last update. */
  private clearAccumulated(): void {
    this.accumulators = this.zeros;
    for (const t of this.rowGradients.values()) t.clear();
  }

  async trainStep(batch: Batch, control: StepControl): Promise<{ loss: number }> {
    if (this.update === 'host') return this.hostStep(batch, control);
    const spec = this.native.trainStep;
    const feeds = this.feeds(spec, batch, control, this.forwardKey(true));
    const out = await this.run('trainStep', feeds, batch, stateFetches(spec));
    this.clearAccumulated();
    const loss = scalarOf(out, spec);
    if (!Number.isFinite(loss)) return { loss };
    const params: TensorMap = new Map();
    const moments: TensorMap = new Map();
    for (const o of spec.outputs) {
      if (o.role === 'parameter_updated') params.set(o.parameter!, this.floatOutput(out, o));
      else if (o.role === 'exp_avg_updated') moments.set(`${o.parameter}.exp_avg`, this.floatOutput(out, o));
      else if (o.role === 'exp_avg_sq_updated') moments.set(`${o.parameter}.exp_avg_sq`, this.floatOutput(out, o));
    }
    if (params.size !== this.params.size) throw new ModtuneError(`${spec.file}: outputs ${params.size} updated parameters, the manifest lists ${this.params.size}`);
    this.params = params;
    if (moments.size) this.moments = moments;
    return { loss };
  }

  /** The gradient model on the update's last micro-batch, then the optimizer in place. */
  private async hostStep(batch: Batch, control: StepControl): Promise<{ loss: number }> {
    const spec = this.native.gradient;
    const out = await this.run('gradient', this.feeds(spec, batch, undefined, this.forwardKey(true)), batch, stateFetches(spec));
    const loss = scalarOf(out, spec);
    if (!Number.isFinite(loss)) {
      this.clearAccumulated();
      return { loss };
    }
    const grads = this.gradientSums(out, spec);
    const m = this.opts.manifest;
    const tensors = m.parameters.map((p): HostTensor => {
      const grad = grads.get(p.name);
      if (!grad) throw new ModtuneError(`${spec.file}: no gradient output for parameter '${p.name}'`);
      return {
        param: this.params.get(p.name)!, grad, decay: p.weightDecay, mask: this.masks.get(p.name),
        expAvg: this.moments.get(`${p.name}.exp_avg`), expAvgSq: this.moments.get(`${p.name}.exp_avg_sq`),
      };
    });
    hostUpdate(tensors, this.optimizer, control);
    this.clearAccumulated();
    return { loss };
  }

  async evaluate(batch: Batch): Promise<{ loss: number; logits: Float32Array }> {
    const spec = this.native.eval;
    const out = await this.run('eval', this.feeds(spec, batch), batch);
    const logitsSpec = spec.outputs.find((o) => o.role === 'logits');
    if (!logitsSpec) throw new ModtuneError(`${spec.file}: the manifest lists no 'logits' output`);
    const logits = out[logitsSpec.name]?.data;
    // One row per example, or per masked token in a masked-LM batch.
    const rows = batch.maskedPositions ? batch.maskedPositions.length : batch.batch;
    if (!(logits instanceof Float32Array) || logits.length % rows !== 0 || logits.length === 0) {
      throw new ModtuneError(`${spec.file}: output '${logitsSpec.name}' is not float32 logits with one row per example`);
    }
    return { loss: batch.labels ? scalarOf(out, spec) : NaN, logits };
  }

  getParameters(): TensorMap {
    return this.params;
  }

  getOptimizerState(): TensorMap {
    return this.moments;
  }

  setState(state: { parameters: TensorMap; optimizer?: TensorMap }): void {
    this.params = this.own(checkParameters(this.opts.manifest, state.parameters, 'checkpoint parameters'));
    if (state.optimizer) this.setOptimizer(state.optimizer);
    this.clearAccumulated();
  }

  async release(): Promise<void> {
    for (const s of this.sessions.values()) await s.release();
    this.sessions.clear();
  }

  private setOptimizer(state: TensorMap): void {
    const next: TensorMap = new Map();
    for (const name of momentNames(this.opts.manifest)) {
      const t = state.get(name);
      const size = this.sizes.get(name.replace(/\.exp_avg(_sq)?$/, ''))!;
      if (!t) throw new ModtuneError(`optimizer state: '${name}' is missing`);
      if (t.length !== size) throw new ModtuneError(`optimizer state: '${name}' has ${t.length} values, expected ${size}`);
      next.set(name, t);
    }
    this.moments = this.own(next);
  }

  /** Host updates write in place: the backend works on its own copies of what it is given. */
  private own(tensors: TensorMap): TensorMap {
    return this.update === 'host' ? new Map([...tensors].map(([k, t]) => [k, Float32Array.from(t)])) : tensors;
  }

  private async session(key: ModelKey): Promise<ort.InferenceSession> {
    const existing = this.sessions.get(key);
    if (existing) return existing;
    const spec = this.native[key];
    const file = path.join(this.opts.artifactsDir, spec.file);
    if (!fs.existsSync(file)) throw new ModtuneError(`${file}: model file listed in manifest.json is missing`);
    const session = await createSession(file, this.opts.device, this.opts.threads);
    const missing = spec.inputs.filter((i) => !session.inputNames.includes(i.name)).map((i) => i.name);
    if (missing.length) {
      await session.release();
      throw new ModtuneError(`${file}: has no input${missing.length > 1 ? 's' : ''} ${missing.slice(0, 5).join(', ')} that manifest.json lists`);
    }
    this.sessions.set(key, session);
    return session;
  }

  private async run(key: ModelKey, feeds: Feeds, batch: Batch, fetches?: string[]): Promise<ort.InferenceSession.ReturnType> {
    const session = await this.session(key);
    try {
      return await (fetches ? session.run(feeds, fetches) : session.run(feeds));
    } catch (e) {
      throw translateRunError(e, { file: path.join(this.opts.artifactsDir, this.native[key].file), what: WHAT[key], batch: batch.batch, seqLen: batch.seqLen, batchSize: this.opts.batchSize });
    }
  }

  /**
   * The key of the next training forward pass's dropout masks: the update it belongs to (1-based)
   * and its micro-batch within it. `last` closes the update.
   */
  private forwardKey(last: boolean): string {
    const key = `update ${this.updates + 1} micro-batch ${this.micro}`;
    if (last) {
      this.updates++;
      this.micro = 0;
    } else {
      this.micro++;
    }
    return key;
  }

  /** The feeds of one model, each input found by its manifest role; `maskKey` for training models. */
  private feeds(spec: ModelSpec, batch: Batch, control?: StepControl, maskKey?: string): Feeds {
    const dims = [batch.batch, batch.seqLen];
    const feeds: Feeds = {};
    for (const input of spec.inputs) {
      feeds[input.name] = input.role === 'dropout_mask'
        ? this.dropoutMask(input, spec, batch, maskKey)
        : this.input(input, spec, batch, dims, control);
    }
    return feeds;
  }

  /** A fresh mask for one `dropout_mask` input, drawn from the run's seed and `key`. */
  private dropoutMask(input: IoSpec, spec: ModelSpec, batch: Batch, key: string | undefined): ort.Tensor {
    const site = this.dropoutSites.get(input.name);
    if (key === undefined || !site) throw new ModtuneError(`${spec.file}: input '${input.name}' is a dropout mask, which only training models take`);
    const dims = site.dims.map((d) => (d === 'batch' ? batch.batch : d === 'sequence' ? batch.seqLen : d));
    const size = dims.reduce((a, b) => a * b, 1);
    if (size > 2 ** 32) throw new ModtuneError(`${spec.file}: dropout mask '${input.name}' would hold ${size} entries ([${dims.join(', ')}]); that is more than one tensor can`);
    // Padded lengths change from batch to batch: the buffer only grows, and a batch uses its start.
    let buf = this.dropoutBuffers.get(input.name);
    if (!buf || buf.length < size) this.dropoutBuffers.set(input.name, (buf = new Uint8Array(size)));
    const mask = buf.subarray(0, size);
    drawDropoutMask(mask, site.ratio, this.opts.seed ?? 0, `${key} ${input.name}`);
    return new ort.Tensor('bool', mask, dims);
  }

  private input(input: IoSpec, spec: ModelSpec, batch: Batch, dims: number[], control?: StepControl): ort.Tensor {
    const state = (map: TensorMap, key: string) => {
      const t = map.get(key);
      if (!t) throw new ModtuneError(`${spec.file}: input '${input.name}' needs '${key}', which this backend does not hold`);
      return new ort.Tensor('float32', t, this.shapes.get(input.parameter!));
    };
    const scalar = (v: number | undefined) => {
      if (v === undefined) throw new ModtuneError(`${spec.file}: input '${input.name}' (${input.role}) is not a model input this step provides`);
      return new ort.Tensor('float32', Float32Array.of(v), []);
    };
    switch (input.role) {
      case 'input_ids': return new ort.Tensor('int64', batch.inputIds, dims);
      case 'attention_mask': return new ort.Tensor('int64', batch.attentionMask, dims);
      case 'token_type_ids': return new ort.Tensor('int64', batch.tokenTypeIds, dims);
      case 'labels': return labelsTensor(input, batch, spec.file);
      case 'hidden_states': {
        const width = this.opts.manifest.native?.frozenPrefix?.hiddenSize;
        const h = batch.hiddenStates;
        if (!h || !width) throw new ModtuneError(`${spec.file}: input '${input.name}' needs the cached hidden states of the frozen layers, which this batch does not carry`);
        if (h.length !== batch.batch * batch.seqLen * width) throw new ModtuneError(`${spec.file}: input '${input.name}': the batch carries ${h.length} hidden-state values, expected ${batch.batch} × ${batch.seqLen} × ${width}`);
        return new ort.Tensor('float32', h, [batch.batch, batch.seqLen, width]);
      }
      case 'masked_positions': {
        if (!batch.maskedPositions) throw new ModtuneError(`${spec.file}: input '${input.name}' needs masked positions; these are masked-LM artifacts (modtune pretrain)`);
        return new ort.Tensor('int64', batch.maskedPositions, [batch.maskedPositions.length]);
      }
      case 'parameter': return state(this.params, input.parameter!);
      case 'grad_accumulator': return state(this.accumulators, input.parameter!);
      case 'exp_avg': return state(this.moments, `${input.parameter}.exp_avg`);
      case 'exp_avg_sq': return state(this.moments, `${input.parameter}.exp_avg_sq`);
      case 'learning_rate': return scalar(control?.learningRate);
      case 'step': return scalar(control?.step);
      case 'grad_scale': return scalar(control?.gradScale);
      default: throw new ModtuneError(`${spec.file}: input '${input.name}' has role '${input.role}', which is not a model input`);
    }
  }

  private floatOutput(out: ort.InferenceSession.ReturnType, o: IoSpec): Float32Array {
    const data = out[o.name]?.data;
    const size = this.sizes.get(o.parameter!);
    if (!(data instanceof Float32Array) || data.length !== size) {
      throw new ModtuneError(`output '${o.name}' is missing or not ${size} float32 values`);
    }
    return data;
  }
}

/** A dropout-mask input as the manifest describes it: its drop ratio and its dimensions. */
interface DropoutSite { ratio: number; dims: (number | 'batch' | 'sequence')[] }

/** A `dropout_mask` input of manifest.json (untrusted) checked: a ratio in [0, 1), bool, sizable dims. */
function checkDropoutSite(input: IoSpec, spec: ModelSpec): DropoutSite {
  const { ratio } = input;
  if (typeof ratio !== 'number' || !(ratio >= 0 && ratio < 1)) throw new ModtuneError(`${spec.file}: dropout mask '${input.name}' has ratio ${JSON.stringify(ratio)} in manifest.json, expected a number in [0, 1)`);
  if (input.dtype !== 'bool') throw new ModtuneError(`${spec.file}: dropout mask '${input.name}' has dtype '${input.dtype}' in manifest.json, expected bool`);
  const dims = input.shape.map((d) => {
    if (d === 'batch' || d === 'sequence') return d;
    if (typeof d === 'number' && Number.isSafeInteger(d) && d >= 1 && d <= 1 << 20) return d;
    throw new ModtuneError(`${spec.file}: dropout mask '${input.name}' has dimension ${JSON.stringify(d)} in manifest.json, expected batch, sequence or a size up to 2^20`);
  });
  return { ratio, dims };
}

/** The artifacts' top=/random= masks (masks.safetensors), by parameter, as 0/1 floats. */
function readMasks(artifactsDir: string, manifest: Manifest): TensorMap {
  const masked = manifest.parameters.filter((p) => p.mask !== null);
  if (masked.length === 0) return new Map();
  const file = path.join(artifactsDir, manifest.masks ?? 'masks.safetensors');
  if (!manifest.masks || !fs.existsSync(file)) throw new ModtuneError(`${file}: manifest.json lists masked parameters but not their masks file`);
  const st = readSafetensors(file);
  const out: TensorMap = new Map();
  for (const p of masked) {
    const t = st.tensors.get(p.mask!);
    if (!t || t.data.length !== p.size) throw new ModtuneError(`${file}: mask '${p.mask}' of parameter '${p.name}' is missing or not ${p.size} values`);
    if (t.data.some((v) => v !== 0 && v !== 1)) throw new ModtuneError(`${file}: mask '${p.mask}' holds values other than 0 and 1`);
    out.set(p.name, t.data);
  }
  return out;
}

function labelsTensor(input: IoSpec, batch: Batch, file: string): ort.Tensor {
  // One label per example, or per masked token in a masked-LM batch.
  const n = batch.maskedPositions ? batch.maskedPositions.length : batch.batch;
  if (input.dtype === 'int64') {
    if (batch.labels && !(batch.labels instanceof BigInt64Array)) throw new ModtuneError(`${file}: labels are class indices (int64) but the data has scores; the artifacts were built for classification`);
    // Unlabelled (test) data: any valid class serves, the loss is ignored.
    return new ort.Tensor('int64', batch.labels ?? new BigInt64Array(n), [n]);
  }
  if (batch.labels && !(batch.labels instanceof Float32Array)) throw new ModtuneError(`${file}: labels are scores (float32) but the data has class indices; the artifacts were built for regression`);
  return new ort.Tensor('float32', batch.labels ?? new Float32Array(n), [n]);
}

/**
 * The outputs a training model's caller uses: the loss and the new state. Its logits are never read
 * (evaluation has its own model), and leaving them out spares a copy into a fresh buffer every step —
 * for masked-LM pre-training a [masked tokens × vocabulary] block, 150 MB at 64 × 128 tokens.
 */
function stateFetches(spec: ModelSpec): string[] {
  return spec.outputs.filter((o) => o.role !== 'logits').map((o) => o.name);
}

function scalarOf(out: ort.InferenceSession.ReturnType, spec: ModelSpec): number {
  const o = spec.outputs.find((x) => x.role === 'loss');
  const data = o ? out[o.name]?.data : undefined;
  if (!(data instanceof Float32Array) || data.length !== 1) throw new ModtuneError(`${spec.file}: no scalar float 'loss' output`);
  return data[0]!;
}

/**
 * An onnxruntime-node session from a file path (so external weights resolve beside it).
 * No memory pattern: ONNX Runtime would plan one block holding every intermediate of a run per input
 * shape, and a training step keeps all its activations for the backward pass, so that block is the
 * whole step's working set, taken afresh for each new padded length. Without it the arena reuses
 * freed chunks: bert-mini `full` at 32 × 128 peaks at 1.0 GB instead of 1.4 GB (bert-base: 8.5 GB
 * instead of 11.6 GB), a new batch shape's first step costs about one step instead of two, and the
 * steady step is as fast (`npm run bench -- training`).
 */
export async function createSession(file: string, device: Device, threads?: number): Promise<ort.InferenceSession> {
  if (device === 'cuda') checkCudaProvider(file);
  const options: ort.InferenceSession.SessionOptions = {
    executionProviders: device === 'cuda' ? ['cuda'] : ['cpu'],
    graphOptimizationLevel: 'all',
    intraOpNumThreads: threads ?? defaultThreads(),
    interOpNumThreads: 1,
    enableMemPattern: false,
  };
  try {
    return await ort.InferenceSession.create(file, options);
  } catch (e) {
    throw translateCreateError(e, { file, device });
  }
}

export function defaultThreads(): number {
  return typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
}
