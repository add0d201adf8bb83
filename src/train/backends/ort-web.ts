/**
 * The ort-web backend: the artifacts' ONNX Runtime on-device-training models (`ort/`) on
 * onnxruntime-web 1.19.2's training build (WebAssembly, CPU only), the runtime a browser page
 * would train with.
 *
 * Where the state lives. The runtime owns the parameters, the gradient buffers and the AdamW
 * moments. JS keeps a copy of the trainable parameters (read back after every update, because
 * `getParameters` is synchronous) and what it knows of the optimizer state. The runtime cannot hand
 * the moments back to JS (only through a checkpoint the JS build cannot save), so:
 *   - `getOptimizerState` returns the moments only while they are the ones this backend was given
 *     (or zero: an empty map) and no update has run since; afterwards it returns an empty map and
 *     `optimizerStateExact` is false. A run resumed from such a checkpoint restarts the moments from
 *     zero. SGD (AdamWOptimizer with β1 = β2 = 0) keeps no state across updates, so it is always exact.
 *   - State that must go in (resume, `setState` with optimizer state) goes in through a checkpoint
 *     built in memory (optimizer group `group0` with the step count and both moments), from which
 *     the session is re-created.
 *
 * Gradient scale. The runtime sums micro-batch gradients into its buffers and its optimizer takes
 * the buffers as they are, so the 1/K of gradient accumulation must be applied before summation.
 * The training model's loss-gradient seed (`<loss>_grad`, an initializer 1.0) is replaced, in
 * memory, by a scalar user input `grad_scale` that every runTrainStep feeds: 1/K for an update of K
 * micro-batches. `accumulate` does not know K (the trainer's last update of an epoch can have fewer
 * micro-batches), so it seeds with 1/gradAccum (the option, else the largest update seen so far);
 * when `trainStep`'s gradScale turns out different, the update's earlier micro-batches are run again
 * with the right seed (with dropout they then draw new masks).
 *
 * Learning rate. The schedule and base rate are baked into optimizer_model.onnx (the runtime's
 * learning-rate input cannot be set from JS); `trainStep` checks that the trainer's rate for the
 * step is the baked one and refuses to train on otherwise. The runtime counts its own steps; when
 * the trainer's step differs (a resumed run), the session is re-created from a checkpoint carrying
 * that step.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ModtuneError } from '../../errors.js';
import { ckptFloat32, encodeCheckpoint, readCheckpoint } from '../../artifacts/ort/checkpoint.js';
import { scheduledLearningRate } from '../../artifacts/ort/optimizer.js';
import { buildOrtCheckpoint, lossSeedName, type OrtOptimizerState } from '../../artifacts/ort/training-model.js';
import type { Manifest } from '../../artifacts/manifest.js';
import type { Batch } from '../../data/batching.js';
import { DataType } from '../../onnx/dtype.js';
import { decodeModel, encodeModel } from '../../onnx/io.js';
import { tensorFloat32 } from '../../onnx/tensor.js';
import {
  createTrainingSession, heapGuardInstalled, loadOrtTraining, type OrtFeeds, type OrtTensor, type OrtTrainingModule, type OrtTrainingSession,
} from '../../runtime/ort-training.js';
import type { Schedule } from '../schedule.js';
import { batchAdvice, isAllocationFailure, messageOf, OutOfMemoryError } from './ort-errors.js';
import { checkParameters, defaultThreads, momentNames } from './native.js';
import type { BackendFactory, BackendOptions, StepControl, TensorMap, TrainBackend } from './types.js';

/** The user input that replaces the loss-gradient seed initializer (see the file comment). */
export const GRAD_SCALE_INPUT = 'grad_scale';

export const ortWebBackend: BackendFactory = {
  format: 'ort',
  create: (opts) => OrtWebBackend.create(opts),
};

export const CACHE_FROZEN_NATIVE_ONLY = '--cache-frozen runs on the native backend only: the ort-web backend trains ONNX Runtime\'s own training artifacts, which take token ids; use --backend native';

/** An allocation failure inside the WebAssembly runtime (its heap is capped at 4 GiB). */
const WASM_OOM = /Aborted\(OOM\)|Cannot enlarge memory|Out of memory|RangeError: (?:WebAssembly\.Memory|Array buffer allocation)/i;

type Files = { training: string; eval: string; optimizer: string; checkpoint: string };
type Moments = TensorMap | 'zero';

/**
 * Why `manifest`'s baked learning-rate schedule (optimizer_model.onnx) is not `schedule`, or
 * undefined when they agree. The trainer can call this before its first step.
 */
export function bakedScheduleProblem(manifest: Manifest, schedule: Schedule): string | undefined {
  const o = manifest.optimizer;
  const s = o.schedule;
  const baked = `lr ${o.lr}, ${s.kind} schedule, ${s.warmupSteps} warmup steps${s.kind === 'linear' ? `, ${s.totalSteps} total steps` : ''}`;
  const wanted = `lr ${schedule.peak}, ${schedule.kind} schedule, ${schedule.warmupSteps} warmup steps${schedule.kind === 'linear' ? `, ${schedule.totalSteps} total steps` : ''}`;
  const same = Math.fround(o.lr) === Math.fround(schedule.peak) && s.kind === schedule.kind && s.warmupSteps === schedule.warmupSteps
    && (s.kind === 'constant' || s.totalSteps === schedule.totalSteps);
  if (same) return undefined;
  return `the ort artifacts' optimizer_model.onnx has the learning-rate schedule baked in (${baked}), but this run uses ${wanted}; `
    + 'rebuild the artifacts with the run\'s --lr, --lr-schedule, --warmup-ratio and --total-steps, or train with the schedule they were built for';
}

export class OrtWebBackend implements TrainBackend {
  readonly name = 'ort-web' as const;
  /** onnxruntime-web's thread count in this process (the first backend's request wins). */
  readonly threads: number;

  private session: OrtTrainingSession | undefined;
  private params: TensorMap;
  /** Updates the runtime has taken (it feeds step = this + 1 to the optimizer graph). */
  private stepsTaken = 0;
  /** The runtime's moments when JS knows them: given at creation/restore ('zero': none), null once an update ran. */
  private moments: Moments | null = 'zero';
  /** Micro-batches whose gradients sit in the runtime's buffers, and the seed they were run with. */
  private pending: Batch[] = [];
  private pendingScale = 1;
  /** The most micro-batches one update has had (for the seed of `accumulate`). */
  private largestUpdate: number;
  /** State from `setState` (synchronous), applied before the next run. */
  private queued: { parameters: TensorMap; moments?: Moments } | undefined;

  private readonly files: Files;
  private readonly order: string[];
  private readonly sizes: Map<string, number>;
  private readonly totalSize: number;
  private readonly lossName: string;
  private readonly labelsType: 'int64' | 'float32' | undefined;
  private readonly adamw: boolean;

  private constructor(
    private readonly opts: BackendOptions,
    private readonly ort: OrtTrainingModule,
    private readonly models: { training: Uint8Array; eval: Uint8Array; optimizer: Uint8Array },
    prepared: PreparedTrainingModel,
  ) {
    const m = opts.manifest;
    const o = m.ort!;
    const at = (f: string) => path.join(opts.artifactsDir, f);
    this.files = { training: at(o.training), eval: at(o.eval), optimizer: at(o.optimizer), checkpoint: at(o.checkpoint) };
    this.order = [...o.trainableOrder];
    this.sizes = new Map(m.parameters.map((p) => [p.name, p.size]));
    this.totalSize = this.order.reduce((s, n) => s + this.sizes.get(n)!, 0);
    this.lossName = o.userOutputs[0]!;
    this.labelsType = prepared.labelsType;
    this.adamw = m.optimizer.name === 'adamw';
    this.threads = Number(ort.env.wasm.numThreads ?? 1);
    this.largestUpdate = opts.gradAccum ?? 1;
    this.params = new Map();
  }

  /**
   * `opts.gradAccum` seeds `accumulate` with 1/gradAccum (without it the first update of K > 1
   * micro-batches runs its first K−1 micro-batches twice); `opts.step` starts the runtime's step
   * count (without it the session is re-created at the first `trainStep` whose step is not 1).
   */
  static async create(opts: BackendOptions): Promise<OrtWebBackend> {
    const m = opts.manifest;
    if (opts.device === 'cuda') {
      throw new ModtuneError('--device cuda: the ort-web backend runs onnxruntime-web\'s training build, which has only the CPU (WebAssembly) provider; use --backend native --device cuda, or --device cpu');
    }
    if (opts.frozenPrefix) throw new ModtuneError(CACHE_FROZEN_NATIVE_ONLY);
    const o = m.ort;
    if (!o) throw new ModtuneError(`${opts.artifactsDir}: no ORT training artifacts (manifest.json has no 'ort' section); rebuild them with --format ort or both`);
    checkOrtManifest(m, opts.artifactsDir);
    if (opts.gradAccum !== undefined && !(Number.isSafeInteger(opts.gradAccum) && opts.gradAccum >= 1)) {
      throw new ModtuneError(`ort-web backend: gradAccum must be a positive integer, got ${opts.gradAccum}`);
    }
    if (opts.step !== undefined && !(Number.isSafeInteger(opts.step) && opts.step >= 0)) {
      throw new ModtuneError(`ort-web backend: step must be an integer ≥ 0, got ${opts.step}`);
    }
    const read = (f: string) => {
      const file = path.join(opts.artifactsDir, f);
      if (!fs.existsSync(file)) throw new ModtuneError(`${file}: model file listed in manifest.json is missing`);
      return fs.readFileSync(file);
    };
    const prepared = prepareTrainingModel(read(o.training), path.join(opts.artifactsDir, o.training), m);
    const models = { training: prepared.bytes, eval: read(o.eval), optimizer: read(o.optimizer) };
    const ort = await loadRuntime(opts.threads ?? defaultThreads());
    const backend = new OrtWebBackend(opts, ort, models, prepared);

    const parameters = opts.parameters ? checkParameters(m, opts.parameters, 'initial parameters') : undefined;
    const moments = opts.optimizer ? backend.checkMoments(opts.optimizer, 'optimizer state') : 'zero';
    const step = opts.step ?? 0;
    const custom = parameters !== undefined || moments !== 'zero' || step > 0;
    await backend.open(custom ? backend.checkpointWith(parameters, { step, moments }) : fs.readFileSync(backend.files.checkpoint));
    backend.stepsTaken = step;
    backend.moments = moments;
    return backend;
  }

  /** Whether `getOptimizerState()` is the runtime's optimizer state (false once AdamW moments exist only inside the runtime). */
  get optimizerStateExact(): boolean {
    return !this.adamw || this.moments !== null;
  }

  async accumulate(batch: Batch): Promise<{ loss: number }> {
    await this.settle();
    const scale = this.pending.length ? this.pendingScale : Math.fround(1 / this.largestUpdate);
    const loss = await this.forwardBackward(batch, scale);
    if (!Number.isFinite(loss)) {
      await this.dropGradients();
      return { loss };
    }
    this.pending.push(batch);
    this.pendingScale = scale;
    return { loss };
  }

  async trainStep(batch: Batch, control: StepControl): Promise<{ loss: number }> {
    await this.settle(control.step - 1);
    const scale = Math.fround(control.gradScale);
    if (!(scale > 0 && Number.isFinite(scale))) throw new ModtuneError(`ort-web backend: gradScale must be a positive number, got ${control.gradScale}`);
    this.checkLearningRate(control);
    let replay = this.pending.length > 0 && scale !== this.pendingScale;
    if (control.step - 1 !== this.stepsTaken) {
      await this.moveToStep(control.step - 1);
      replay = this.pending.length > 0;
    }
    if (replay && !(await this.replay(scale))) return { loss: NaN };
    const loss = await this.forwardBackward(batch, scale);
    if (!Number.isFinite(loss)) {
      await this.dropGradients();
      return { loss };
    }
    const session = this.live();
    await this.guard('an optimizer step', batch, () => session.runOptimizerStep());
    await session.lazyResetGrad();
    this.largestUpdate = Math.max(this.largestUpdate, this.pending.length + 1);
    this.pending = [];
    this.stepsTaken++;
    if (this.adamw) this.moments = null;
    await this.pullParameters();
    return { loss };
  }

  async evaluate(batch: Batch): Promise<{ loss: number; logits: Float32Array }> {
    await this.settle();
    const session = this.live();
    const out = await this.guard('evaluation', batch, () => session.runEvalStep(this.feeds(session.evalInputNames, batch, undefined, this.files.eval)));
    const logits = out.logits?.data;
    if (!(logits instanceof Float32Array) || logits.length === 0 || logits.length % batch.batch !== 0) {
      throw new ModtuneError(`${this.files.eval}: output 'logits' is not float32 logits with one row per example`);
    }
    return { loss: batch.labels ? this.scalarLoss(out, this.files.eval) : NaN, logits };
  }

  getParameters(): TensorMap {
    return this.params;
  }

  getOptimizerState(): TensorMap {
    return this.moments instanceof Map ? this.moments : new Map();
  }

  setState(state: { parameters: TensorMap; optimizer?: TensorMap }): void {
    const parameters = checkParameters(this.opts.manifest, state.parameters, 'checkpoint parameters');
    const moments = state.optimizer ? this.checkMoments(state.optimizer, 'checkpoint optimizer state') : undefined;
    this.queued = { parameters, moments };
    this.params = parameters;
    this.pending = [];
  }

  async release(): Promise<void> {
    const s = this.session;
    this.session = undefined;
    if (s) await s.release();
  }

  /** Every parameter the runtime holds, trainable first then frozen, in training-model input order (for inspection). */
  async allParameters(): Promise<Float32Array> {
    await this.settle();
    return this.live().getContiguousParameters(false);
  }

  // ---- session ---------------------------------------------------------------------------------

  private async open(checkpoint: Uint8Array): Promise<void> {
    let session: OrtTrainingSession;
    try {
      session = await createTrainingSession(
        { checkpoint, trainModel: this.models.training, evalModel: this.models.eval, optimizerModel: this.models.optimizer },
        { labels: { checkpoint: this.files.checkpoint, trainModel: this.files.training, evalModel: this.files.eval, optimizerModel: this.files.optimizer } },
      );
    } catch (e) {
      if (isOutOfMemory(e)) {
        throw new OutOfMemoryError(`${this.files.checkpoint}: out of memory loading the ORT training session into onnxruntime-web, whose WebAssembly heap is capped at 4 GiB (${messageOf(e)}); train fewer parameters or use --backend native`, { cause: e });
      }
      throw e;
    }
    // getContiguousParameters/loadParametersBuffer corrupt the wasm heap without the guard.
    if (!heapGuardInstalled()) {
      await session.release();
      throw new ModtuneError('onnxruntime-web: its training build was initialised in this process without the heap guard (src/runtime/ort-training.ts); reading parameters could corrupt its memory');
    }
    const missing = [GRAD_SCALE_INPUT, ...this.opts.manifest.ort!.userInputs].filter((n) => !session.trainingInputNames.includes(n));
    if (missing.length) {
      await session.release();
      throw new ModtuneError(`${this.files.training}: the training session has no input${missing.length > 1 ? 's' : ''} ${missing.join(', ')} (it has ${session.trainingInputNames.join(', ')})`);
    }
    const size = await session.getParametersSize(true);
    if (size !== this.totalSize) {
      await session.release();
      throw new ModtuneError(`${this.files.checkpoint}: holds ${size} trainable values, manifest.json lists ${this.totalSize}`);
    }
    this.session = session;
    await this.pullParameters();
  }

  private live(): OrtTrainingSession {
    if (!this.session) throw new ModtuneError('ort-web backend: the training session was released');
    return this.session;
  }

  /** Re-create the session with `params` and an optimizer group at `step` (AdamW moments if known). */
  private async reopen(params: TensorMap, step: number, moments: Moments): Promise<void> {
    const bytes = this.checkpointWith(params, { step, moments });
    await this.release();
    await this.open(bytes);
    this.stepsTaken = step;
    this.moments = moments;
  }

  /**
   * The artifacts' checkpoint with `params` as trainable values (default: the file's) and an
   * optimizer group: `step` updates taken, AdamW moments (zero unless given).
   */
  private checkpointWith(params: TensorMap | undefined, optimizer: { step: number; moments: Moments }): Uint8Array {
    const file = this.files.checkpoint;
    if (!fs.existsSync(file)) throw new ModtuneError(`${file}: checkpoint listed in manifest.json is missing`);
    const base = readCheckpoint(file, { label: file });
    const names = base.trainable.map((t) => t.name);
    if (names.join('\n') !== this.order.join('\n')) {
      throw new ModtuneError(`${file}: trainable parameters [${names.slice(0, 3).join(', ')}...] are not manifest.json's ort.trainableOrder [${this.order.slice(0, 3).join(', ')}...]`);
    }
    const trainable = base.trainable.map((t) => ({ name: t.name, dims: t.dims, data: params?.get(t.name) ?? ckptFloat32(t) }));
    const state: OrtOptimizerState = { step: optimizer.step };
    if (optimizer.moments instanceof Map) {
      const m = optimizer.moments;
      state.moments = new Map(this.order.map((n) => [n, [m.get(`${n}.exp_avg`)!, m.get(`${n}.exp_avg_sq`)!]]));
    }
    const ckpt = buildOrtCheckpoint(trainable, new Set(names), { optimizer: state, properties: base.properties });
    ckpt.frozen = base.frozen;
    return encodeCheckpoint(ckpt);
  }

  /**
   * Apply a `setState` queued since the last run. Restored optimizer state re-creates the session,
   * at `step` when the caller knows which update comes next (else the runtime's current count).
   */
  private async settle(step = this.stepsTaken): Promise<void> {
    const q = this.queued;
    if (!q) return;
    this.queued = undefined;
    if (q.moments !== undefined) {
      await this.reopen(q.parameters, step, q.moments);
      return;
    }
    const session = this.live();
    await session.loadParametersBuffer(this.flatten(q.parameters), true);
    await session.lazyResetGrad();
    await this.pullParameters();
  }

  /** Make the runtime's step count `step` (a resumed run): only possible while its moments are known. */
  private async moveToStep(step: number): Promise<void> {
    if (this.moments === null) {
      throw new ModtuneError(
        `ort-web backend: the trainer asks for update ${step + 1}, but the runtime has taken ${this.stepsTaken} updates and its AdamW moments `
        + 'cannot be read back from JavaScript to restart at another step; restore a checkpoint (setState) first',
      );
    }
    await this.reopen(this.params, step, this.moments);
  }

  // ---- steps -----------------------------------------------------------------------------------

  /** runTrainStep: forward, backward, gradient × scale added to the runtime's buffers. Returns the loss. */
  private async forwardBackward(batch: Batch, scale: number): Promise<number> {
    const session = this.live();
    const out = await this.guard('a training step', batch, () => session.runTrainStep(this.feeds(session.trainingInputNames, batch, scale, this.files.training)));
    return this.scalarLoss(out, this.files.training);
  }

  /** Re-run the pending micro-batches with seed `scale`; false (gradients dropped) if a loss is not finite. */
  private async replay(scale: number): Promise<boolean> {
    const batches = this.pending;
    await this.dropGradients();
    for (const b of batches) {
      if (!Number.isFinite(await this.forwardBackward(b, scale))) {
        await this.dropGradients();
        return false;
      }
    }
    this.pending = batches;
    this.pendingScale = scale;
    return true;
  }

  private async dropGradients(): Promise<void> {
    this.pending = [];
    await this.live().lazyResetGrad();
  }

  private checkLearningRate(control: StepControl): void {
    if (!Number.isSafeInteger(control.step) || control.step < 1) throw new ModtuneError(`ort-web backend: step must be an integer ≥ 1, got ${control.step}`);
    const o = this.opts.manifest.optimizer;
    const baked = scheduledLearningRate(o.lr, o.schedule, control.step);
    const asked = Math.fround(control.learningRate);
    // Both are float32 roundings of the same float64 formula: they may differ by an ulp, not more.
    if (Math.abs(baked - asked) > 1e-6 * Math.max(Math.abs(baked), Math.abs(asked))) {
      const s = o.schedule;
      throw new ModtuneError(
        `ort-web backend: update ${control.step} would run at learning rate ${baked} (baked into ${this.files.optimizer}: lr ${o.lr}, ${s.kind} schedule, `
        + `${s.warmupSteps} warmup steps${s.kind === 'linear' ? `, ${s.totalSteps} total steps` : ''}), but the trainer's schedule says ${control.learningRate}; `
        + 'rebuild the artifacts with the run\'s --lr, --lr-schedule, --warmup-ratio and --total-steps',
      );
    }
  }

  private feeds(names: readonly string[], batch: Batch, scale: number | undefined, file: string): OrtFeeds {
    const n = batch.batch;
    const dims = [n, batch.seqLen];
    const tokens = (a: BigInt64Array, what: string) => {
      if (a.length !== n * batch.seqLen) throw new ModtuneError(`batch: ${what} has ${a.length} values, expected ${n}×${batch.seqLen}`);
      return new this.ort.Tensor('int64', a, dims);
    };
    const feeds: OrtFeeds = {};
    for (const name of names) {
      switch (name) {
        case 'input_ids': feeds[name] = tokens(batch.inputIds, name); break;
        case 'attention_mask': feeds[name] = tokens(batch.attentionMask, name); break;
        case 'token_type_ids': feeds[name] = tokens(batch.tokenTypeIds, name); break;
        case 'labels': feeds[name] = this.labels(batch, file); break;
        case GRAD_SCALE_INPUT:
          if (scale === undefined) throw new ModtuneError(`${file}: unexpected input '${name}'`);
          feeds[name] = new this.ort.Tensor('float32', Float32Array.of(scale), []);
          break;
        default: throw new ModtuneError(`${file}: input '${name}' is not one this backend can feed (input_ids, attention_mask, token_type_ids, labels)`);
      }
    }
    return feeds;
  }

  private labels(batch: Batch, file: string): OrtTensor {
    const n = batch.batch;
    if (this.labelsType === 'int64') {
      if (batch.labels && !(batch.labels instanceof BigInt64Array)) throw new ModtuneError(`${file}: labels are class indices (int64) but the data has scores; the artifacts were built for classification`);
      // Unlabelled (test) data: any valid class serves, the loss is ignored.
      return new this.ort.Tensor('int64', batch.labels ?? new BigInt64Array(n), [n]);
    }
    if (batch.labels && !(batch.labels instanceof Float32Array)) throw new ModtuneError(`${file}: labels are scores (float32) but the data has class indices; the artifacts were built for regression`);
    return new this.ort.Tensor('float32', batch.labels ?? new Float32Array(n), [n]);
  }

  private scalarLoss(out: Record<string, OrtTensor>, file: string): number {
    const data = out[this.lossName]?.data;
    if (!(data instanceof Float32Array) || data.length !== 1) throw new ModtuneError(`${file}: no scalar float output '${this.lossName}'`);
    return data[0]!;
  }

  /** Run `fn`; an allocation failure in the wasm heap becomes batch-size advice. */
  private async guard<T>(what: string, batch: Batch, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (e) {
      if (isOutOfMemory(e)) {
        throw new OutOfMemoryError(
          `out of memory running ${what} on a batch of ${batch.batch}×${batch.seqLen} tokens in onnxruntime-web, whose WebAssembly heap is capped at 4 GiB (${messageOf(e)}); ${batchAdvice(this.opts.batchSize ?? batch.batch)}`,
          { cause: e },
        );
      }
      throw e;
    }
  }

  // ---- parameters ------------------------------------------------------------------------------

  /** Refresh the JS copy of the trainable parameters: views into one buffer, HF names and layout. */
  private async pullParameters(): Promise<void> {
    const flat = await this.live().getContiguousParameters(true);
    if (flat.length !== this.totalSize) throw new ModtuneError(`onnxruntime-web returned ${flat.length} trainable values, manifest.json lists ${this.totalSize}`);
    const params: TensorMap = new Map();
    let offset = 0;
    for (const name of this.order) {
      const size = this.sizes.get(name)!;
      params.set(name, flat.subarray(offset, offset + size));
      offset += size;
    }
    this.params = params;
  }

  private flatten(params: TensorMap): Float32Array {
    const flat = new Float32Array(this.totalSize);
    let offset = 0;
    for (const name of this.order) {
      flat.set(params.get(name)!, offset);
      offset += this.sizes.get(name)!;
    }
    return flat;
  }

  /** Optimizer state in the trainer's naming: all AdamW moments, or none (empty map: they restart from zero). */
  private checkMoments(state: TensorMap, label: string): Moments {
    if (!this.adamw || state.size === 0) return 'zero';
    const out: TensorMap = new Map();
    for (const name of momentNames(this.opts.manifest)) {
      const t = state.get(name);
      const size = this.sizes.get(name.replace(/\.exp_avg(_sq)?$/, ''))!;
      if (!t) throw new ModtuneError(`${label}: '${name}' is missing (give all AdamW moments, or none to restart them from zero)`);
      if (t.length !== size) throw new ModtuneError(`${label}: '${name}' has ${t.length} values, expected ${size}`);
      out.set(name, t);
    }
    return out;
  }
}

// ---- helpers -----------------------------------------------------------------------------------

interface PreparedTrainingModel {
  bytes: Uint8Array;
  labelsType: 'int64' | 'float32' | undefined;
}

/**
 * The training model with its loss-gradient seed turned into the `grad_scale` input, after checking
 * that its trainable parameters come in `ort.trainableOrder` (the order getContiguousParameters uses).
 */
export function prepareTrainingModel(bytes: Uint8Array, file: string, manifest: Manifest): PreparedTrainingModel {
  const o = manifest.ort!;
  const model = decodeModel(bytes, { label: file });
  const g = model.graph;
  const trainable = new Set(o.trainableOrder);
  const order = g.inputs.filter((i) => trainable.has(i.name)).map((i) => i.name);
  if (order.join('\n') !== o.trainableOrder.join('\n')) {
    throw new ModtuneError(`${file}: its trainable parameter inputs [${order.slice(0, 3).join(', ')}...] are not manifest.json's ort.trainableOrder [${o.trainableOrder.slice(0, 3).join(', ')}...]`);
  }
  const loss = o.userOutputs[0];
  if (!loss || g.outputs[0]?.name !== loss) throw new ModtuneError(`${file}: its first output should be the loss '${loss}' (manifest.json ort.userOutputs), found '${g.outputs[0]?.name}'`);
  const seedName = lossSeedName(loss);
  const seed = g.initializers.get(seedName);
  if (!seed || seed.dataType !== DataType.FLOAT || tensorFloat32(seed).length !== 1 || tensorFloat32(seed)[0] !== 1) {
    throw new ModtuneError(`${file}: the loss-gradient seed '${seedName}' should be a float initializer holding 1.0`);
  }
  if (g.isGraphInput(GRAD_SCALE_INPUT) || g.initializers.has(GRAD_SCALE_INPUT) || g.producer(GRAD_SCALE_INPUT)) {
    throw new ModtuneError(`${file}: already has a value named '${GRAD_SCALE_INPUT}', which this backend feeds the gradient scale through`);
  }
  g.initializers.delete(seedName);
  g.valueInfo.delete(seedName);
  g.replaceUses(seedName, GRAD_SCALE_INPUT);
  const firstParam = g.inputs.findIndex((i) => !o.userInputs.includes(i.name));
  g.inputs.splice(firstParam < 0 ? g.inputs.length : firstParam, 0, { name: GRAD_SCALE_INPUT, elemType: DataType.FLOAT, shape: [...seed.dims] });
  g.invalidate();
  const labels = g.inputs.find((i) => i.name === 'labels');
  const labelsType = labels ? (labels.elemType === DataType.INT64 ? 'int64' : labels.elemType === DataType.FLOAT ? 'float32' : badLabels(file)) : undefined;
  return { bytes: encodeModel(model), labelsType };
}

function badLabels(file: string): never {
  throw new ModtuneError(`${file}: input 'labels' should be int64 (classification) or float32 (regression)`);
}

function checkOrtManifest(m: Manifest, dir: string): void {
  const o = m.ort!;
  const listed = new Set(m.parameters.map((p) => p.name));
  const ordered = new Set(o.trainableOrder);
  const missing = [...listed].find((n) => !ordered.has(n)) ?? o.trainableOrder.find((n) => !listed.has(n));
  if (missing !== undefined || ordered.size !== o.trainableOrder.length || listed.size !== ordered.size) {
    throw new ModtuneError(`${path.join(dir, 'manifest.json')}: ort.trainableOrder must list each trainable parameter once (mismatch at '${missing ?? 'a duplicate'}')`);
  }
  if (!o.userOutputs.includes('logits')) throw new ModtuneError(`${path.join(dir, 'manifest.json')}: ort.userOutputs has no 'logits'`);
}

function isOutOfMemory(e: unknown): boolean {
  return isAllocationFailure(e) || WASM_OOM.test(messageOf(e));
}

/**
 * The training build with `threads` wasm threads. The thread count is fixed once per process; a
 * later backend asking for another count runs with the first one (it changes speed, not results
 * beyond float rounding).
 */
async function loadRuntime(threads: number): Promise<OrtTrainingModule> {
  try {
    return await loadOrtTraining({ numThreads: threads });
  } catch (e) {
    if (e instanceof ModtuneError && /already runs with \d+ thread/.test(e.message)) return loadOrtTraining();
    throw e;
  }
}
