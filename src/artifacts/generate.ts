import * as fs from 'node:fs';
import * as path from 'node:path';
import { ModtuneError } from '../errors.js';
import { writeSafetensors } from '../bert/safetensors.js';
import { getGlueTask } from '../data/glue-tasks.js';
import { attachHead, dropoutRates, HeadSpec } from '../heads/index.js';
import { discoverParameters, selectParameters, unshareParameters } from '../modules/index.js';
import type { ParameterInfo, Selection } from '../modules/types.js';
import type { Model } from '../onnx/graph.js';
import { modelSha256 } from '../onnx/hash.js';
import { loadModel, saveModelsSharedWeights, writeAtomic } from '../onnx/io.js';
import { checkFiniteWeights } from '../onnx/finite.js';
import { checkNoDanglingInputs, checkOpsets } from '../onnx/checks.js';
import { checkMaxLength, maxSequenceLength } from '../modules/positions.js';
import { tokenizerBeside } from '../data/paths.js';
import { defaultLearningRate } from './default-lr.js';
import { VERSION } from '../version.js';
import { upgradeOpset } from '../autodiff/opset.js';
import { sweepDeadTemps } from '../util/folder-lock.js';
import { checkOutputFolder, jsonHas, type FolderKind } from '../util/output-guard.js';
import { ExposedParameter, exposeTrainableParameters, transpose2d } from './expose.js';
import { LrSchedule, Manifest, MANIFEST_FORMAT, MANIFEST_VERSION } from './manifest.js';
import { buildNativeModels, describeModel, NativeParam } from './native/build.js';
import { checkMaxGradNorm, DEFAULT_ADAMW, DEFAULT_MAX_GRAD_NORM, OptimizerConfig } from './native/optimizer.js';
import { writeOrtArtifacts } from './ort/write.js';
import { buildFrozenPrefixModels, frozenPrefixCut, planFrozenPrefix, removeDropoutsBelow, type FrozenPrefixPlan } from './native/frozen-prefix.js';
import { checkKind, resolveInside } from '../util/inside.js';

export type ArtifactFormat = 'native' | 'ort' | 'both';

export interface ArtifactOptions {
  /** Base model file (.onnx). */
  model: string;
  /** Selection spec, e.g. `layernorm`, `attention@0-5`, `layernorm:top=5%`. */
  train: string;
  out: string;
  /** GLUE task (decides the head and label list), or numLabels / regression. */
  task?: string;
  numLabels?: number;
  regression?: boolean;
  labels?: string[];
  format?: ArtifactFormat;
  optimizer?: 'adamw' | 'sgd';
  lr?: number;
  lrSchedule?: 'linear' | 'constant';
  warmupRatio?: number;
  warmupSteps?: number;
  totalSteps?: number;
  weightDecay?: number;
  /** Global gradient-norm clipping (torch.nn.utils.clip_grad_norm_); default 1.0 as Hugging Face's Trainer, 0: off. */
  maxGradNorm?: number;
  dropout?: number;
  newHead?: boolean;
  freezeHead?: boolean;
  tokenizer?: string;
  maxLength?: number;
  lowercase?: boolean;
  seed?: number;
  /** Seed attributes on the train models' Dropout nodes (seed + i): reproducible masks with dropout > 0. */
  dropoutSeed?: number;
  /**
   * Also write the `--cache-frozen` models (`native.frozenPrefix`) when a frozen encoder layer lies
   * below every trainable parameter; the layers below the first trainable one then run without
   * dropout in every training model of the folder. Native format only.
   */
  cacheFrozen?: boolean;
  force?: boolean;
}

export interface ArtifactResult {
  dir: string;
  manifest: Manifest;
  files: string[];
  /** With `cacheFrozen`: the first layer the cached models compute, or why nothing is cached. */
  frozenPrefix?: FrozenPrefixPlan;
}

/** Hugging Face's rule: no weight decay for biases and LayerNorm weights. */
export function decays(p: ParameterInfo): boolean {
  return p.role === 'weight' && !p.module.endsWith('layernorm');
}

/**
 * ORT's AdamWOptimizer applies one weight decay to every parameter of its group, and the JS training
 * API offers one group. Hugging Face exempts biases and LayerNorm weights, and masked entries must
 * not move at all. When one value cannot express that (a mixed selection, or a decayed parameter
 * with a mask), the ort artifacts use no decay; the manifest records the value used.
 */
export function ortWeightDecay(params: NativeParam[], weightDecay: number): number {
  if (weightDecay === 0) return 0;
  const allDecay = params.every((p) => p.decay && !p.mask);
  return allDecay ? weightDecay : 0;
}

/** The task head and label list implied by the options. */
export function resolveHead(opts: Pick<ArtifactOptions, 'task' | 'numLabels' | 'regression' | 'labels'>): { head: HeadSpec; labels: string[] | null; task: string | null } {
  if (opts.task) {
    const t = getGlueTask(opts.task);
    if (t.regression) return { head: { kind: 'regression' }, labels: null, task: t.name };
    if (opts.numLabels !== undefined && opts.numLabels !== t.labels!.length) {
      throw new ModtuneError(`--num-labels ${opts.numLabels} does not fit task ${t.name}, which has ${t.labels!.length} labels (${t.labels!.join(', ')})`);
    }
    return { head: { kind: 'classification', numLabels: t.labels!.length }, labels: [...t.labels!], task: t.name };
  }
  if (opts.regression) return { head: { kind: 'regression' }, labels: null, task: null };
  if (opts.numLabels !== undefined) {
    if (!Number.isInteger(opts.numLabels) || opts.numLabels < 2) throw new ModtuneError(`--num-labels must be an integer ≥ 2 (got ${opts.numLabels}); use --regression for one output`);
    const labels = opts.labels ?? Array.from({ length: opts.numLabels }, (_, i) => String(i));
    if (labels.length !== opts.numLabels) throw new ModtuneError(`${labels.length} label names for ${opts.numLabels} labels`);
    return { head: { kind: 'classification', numLabels: opts.numLabels }, labels, task: null };
  }
  throw new ModtuneError('say what to train for: --task NAME (a GLUE task), --num-labels N or --regression');
}

function findTokenizer(opts: ArtifactOptions): string | null {
  if (opts.tokenizer) {
    if (!fs.existsSync(opts.tokenizer)) throw new ModtuneError(`--tokenizer ${opts.tokenizer}: file not found (expected tokenizer.json or vocab.txt)`);
    return opts.tokenizer;
  }
  return tokenizerBeside(opts.model) ?? null;
}

/** The selected parameters' masks in Hugging Face layout (masks come in stored layout). */
function hfMask(p: ParameterInfo, mask: Uint8Array | undefined): Uint8Array | undefined {
  if (!mask || !p.transposed) return mask;
  const t = transpose2d(Float32Array.from(mask), p.shape[0]!, p.shape[1]!);
  return Uint8Array.from(t);
}

/**
 * Turn a base model + selection into training artifacts: the native train-step/gradient/eval/infer
 * models (standard ops, for any ONNX Runtime) and/or ONNX Runtime's on-device-training artifacts,
 * plus `manifest.json`. Written into a temporary folder and renamed into place at the end, so a
 * failure never leaves a half-written artifacts folder.
 */
export function generateArtifacts(opts: ArtifactOptions): ArtifactResult {
  const format = opts.format ?? 'native';
  const out = path.resolve(opts.out);
  const tokenizerSource = findTokenizer(opts);
  checkOutputFolder(out, ARTIFACTS_FOLDER, {
    force: opts.force,
    inputs: [{ path: opts.model, what: 'the model' }, ...(tokenizerSource ? [{ path: tokenizerSource, what: 'the tokenizer' }] : [])],
  });
  sweepDeadTemps(path.dirname(out), (n) => n.startsWith(`${path.basename(out)}.tmp-`));
  const { head, labels, task } = resolveHead(opts);
  const seed = opts.seed ?? 42;
  const base = loadModel(opts.model);
  checkOpsets(base, opts.model);
  checkNoDanglingInputs(base, opts.model);
  checkFiniteWeights(base, opts.model);
  const sha256 = modelSha256(opts.model, base.externalDataFiles ?? []);
  if (opts.cacheFrozen && format === 'ort') throw new ModtuneError('--cache-frozen builds native models only (the ort format\'s training runtime takes token ids); use --format native or both');
  const headed = attachHead(base, head, { newHead: opts.newHead, seed, dropout: opts.dropout, dropoutSeed: opts.dropoutSeed, label: opts.model });
  const structure = discoverParameters(headed.train);
  const maxPositions = maxSequenceLength(structure);
  // A length the user asked for must fit the position table; the default adapts to a shorter one.
  if (opts.maxLength !== undefined) checkMaxLength(opts.maxLength, maxPositions, '--max-length', opts.model);
  const maxLength = opts.maxLength ?? Math.min(128, maxPositions ?? 128);
  const selection: Selection = selectParameters(structure, opts.train, { seed, freezeHead: opts.freezeHead, values: structure.values });
  const rates = dropoutRates(base, opts.dropout);
  const frozenPlan = opts.cacheFrozen ? planFrozenPrefix(selection.parameters, structure.numLayers) : undefined;
  const frozenLayer = frozenPlan && 'layer' in frozenPlan ? frozenPlan.layer : undefined;
  const cut = frozenLayer !== undefined ? frozenPrefixCut(headed.infer, frozenLayer, opts.model) : undefined;
  // Layers that run once per example cannot drop out anew at each step: no training model of
  // the folder drops out there, so cached and uncached runs compute the same.
  if (cut) removeDropoutsBelow(headed.train, cut.value);

  const prepare = (m: Model): ExposedParameter[] => {
    const params = selection.parameters.map((p) => ({ ...p }));
    unshareParameters(m, params);
    const exposed = exposeTrainableParameters(m, params);
    upgradeOpset(m, 17);
    return exposed;
  };
  const train = headed.train;
  const evalModel = headed.eval;
  const exposed = prepare(train);
  prepare(evalModel);
  const params: NativeParam[] = exposed.map((e) => ({ ...e, decay: decays(e.info), mask: hfMask(e.info, selection.masks.get(e.info.name)) }));

  const optimizer: OptimizerConfig = {
    ...DEFAULT_ADAMW,
    name: opts.optimizer ?? 'adamw',
    weightDecay: opts.weightDecay ?? DEFAULT_ADAMW.weightDecay,
    maxGradNorm: opts.maxGradNorm ?? DEFAULT_MAX_GRAD_NORM,
  };
  checkMaxGradNorm(optimizer.maxGradNorm);
  // The rate follows the selection's size unless one is given (default-lr.ts).
  const lr = opts.lr ?? defaultLearningRate(selection.trainableCount, structure.totalCount);
  const totalSteps = opts.totalSteps ?? 0;
  const schedule: LrSchedule = {
    kind: opts.lrSchedule ?? 'linear',
    warmupSteps: opts.warmupSteps ?? Math.round((opts.warmupRatio ?? 0) * totalSteps),
    totalSteps,
  };

  const tmp = `${out}.tmp-${process.pid}`;
  fs.rmSync(tmp, { recursive: true, force: true });
  fs.mkdirSync(tmp, { recursive: true });
  try {
    const files: string[] = [];
    const rel = (f: string) => path.relative(tmp, f);

    // Initial values and masks, Hugging Face names and layouts.
    writeSafetensors(path.join(tmp, 'params.safetensors'), new Map(params.map((p) => [p.name, { shape: p.shape, data: p.initial }])), { format: 'pt' });
    files.push(path.join(tmp, 'params.safetensors'));
    const masked = params.filter((p) => p.mask);
    if (masked.length) {
      writeSafetensors(path.join(tmp, 'masks.safetensors'), new Map(masked.map((p) => [p.name, { shape: p.shape, data: Float32Array.from(p.mask!) }])), { format: 'pt' });
      files.push(path.join(tmp, 'masks.safetensors'));
    }

    let tokenizerFile: string | null = null;
    const tok = tokenizerSource;
    if (tok) {
      tokenizerFile = path.basename(tok).endsWith('.json') ? 'tokenizer.json' : 'vocab.txt';
      fs.copyFileSync(tok, path.join(tmp, tokenizerFile));
      files.push(path.join(tmp, tokenizerFile));
    }

    const paramNames = new Set(params.map((p) => p.name));
    const manifest: Manifest = {
      format: MANIFEST_FORMAT,
      version: MANIFEST_VERSION,
      modtuneVersion: VERSION,
      createdAt: new Date().toISOString(),
      base: { file: path.resolve(opts.model), sha256, family: structure.family, numLayers: structure.numLayers, hiddenSize: structure.hiddenSize, totalParameters: structure.totalCount, vocabSize: structure.vocabSize, ...(maxPositions !== undefined && { maxPositions }) },
      task: { name: task, head, labels, headReused: headed.head.reused },
      selection: { spec: opts.train, trainableCount: selection.trainableCount, totalCount: selection.totalCount, freezeHead: !!opts.freezeHead, seed },
      parameters: params.map((p) => ({
        name: p.name,
        module: p.info.module,
        layer: p.info.layer,
        role: p.info.role,
        shape: p.shape,
        size: p.initial.length,
        trainableEntries: p.mask ? p.mask.reduce((s, v) => s + v, 0) : p.initial.length,
        mask: p.mask ? p.name : null,
        weightDecay: optimizer.weightDecay !== 0 && p.decay,
        baseInitializer: p.info.name,
        baseTransposed: p.info.transposed,
      })),
      initialValues: 'params.safetensors',
      masks: masked.length ? 'masks.safetensors' : null,
      optimizer: { name: optimizer.name, lr, beta1: optimizer.beta1, beta2: optimizer.beta2, epsilon: optimizer.epsilon, weightDecay: optimizer.weightDecay, schedule, maxGradNorm: optimizer.maxGradNorm! },
      dropout: { override: opts.dropout ?? null, rates, ...(frozenLayer !== undefined && { offBelowLayer: frozenLayer }) },
      tokenizer: { file: tokenizerFile, lowercase: opts.lowercase ?? true, maxLength },
    };

    if (format === 'native' || format === 'both') {
      const models = buildNativeModels(train, evalModel, headed.infer, params, optimizer);
      const dir = path.join(tmp, 'native');
      fs.mkdirSync(dir);
      const entries = [
        { model: models.trainStep, file: path.join(dir, 'train_step.onnx') },
        { model: models.gradient, file: path.join(dir, 'gradient.onnx') },
        { model: models.eval, file: path.join(dir, 'eval.onnx') },
        { model: models.infer, file: path.join(dir, 'infer.onnx') },
      ];
      const cached = cut && buildFrozenPrefixModels(train, evalModel, params, optimizer, cut, opts.model);
      if (cached) {
        entries.push(
          { model: cached.prefix, file: path.join(dir, 'frozen_prefix.onnx') },
          { model: cached.trainStep, file: path.join(dir, 'cached_train_step.onnx') },
          { model: cached.gradient, file: path.join(dir, 'cached_gradient.onnx') },
          { model: cached.eval, file: path.join(dir, 'cached_eval.onnx') },
        );
      }
      files.push(...saveModelsSharedWeights(entries, path.join(dir, 'weights.bin')));
      manifest.native = {
        trainStep: describeModel(models.trainStep, rel(entries[0]!.file), paramNames, models.dropoutMasks),
        gradient: describeModel(models.gradient, rel(entries[1]!.file), paramNames, models.dropoutMasks),
        eval: describeModel(models.eval, rel(entries[2]!.file), paramNames),
        infer: describeModel(models.infer, rel(entries[3]!.file), paramNames),
        weights: 'native/weights.bin',
      };
      if (cached) {
        manifest.native.frozenPrefix = {
          layer: frozenLayer!,
          hiddenSize: cut!.hiddenSize,
          prefix: describeModel(cached.prefix, rel(entries[4]!.file), paramNames),
          trainStep: describeModel(cached.trainStep, rel(entries[5]!.file), paramNames, cached.dropoutMasks),
          gradient: describeModel(cached.gradient, rel(entries[6]!.file), paramNames, cached.dropoutMasks),
          eval: describeModel(cached.eval, rel(entries[7]!.file), paramNames),
        };
      }
    }
    if (format === 'ort' || format === 'both') {
      const weightDecay = ortWeightDecay(params, optimizer.weightDecay);
      const ort = writeOrtArtifacts({ train, eval: evalModel, params, optimizer: { ...optimizer, weightDecay }, lr, schedule, dir: path.join(tmp, 'ort'), weightDecayPolicy: 'decay-all' });
      files.push(...ort.files);
      manifest.ort = { ...ort.manifest, weightDecay };
    }
    writeAtomic(path.join(tmp, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n');
    files.push(path.join(tmp, 'manifest.json'));
    if (fs.existsSync(out)) fs.rmSync(out, { recursive: true, force: true });
    fs.renameSync(tmp, out);
    return { dir: out, manifest, files: files.map((f) => path.join(out, path.relative(tmp, f))), ...(frozenPlan && { frozenPrefix: frozenPlan }) };
  } catch (e) {
    // A failure (an op without a gradient rule, a format that cannot express the selection, ...)
    // leaves nothing behind, not even the temporary folder.
    fs.rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
}

/** An artifacts folder as `--force` may replace it: one with a modtune manifest.json. */
export const ARTIFACTS_FOLDER: FolderKind = {
  name: 'an artifacts folder',
  marker: 'manifest.json',
  recognise: (text) => jsonHas(text, { format: (v) => v === MANIFEST_FORMAT }),
};

/**
 * Read and check an artifacts folder's manifest. The folder may come from a run's config.json (a
 * run made with `--artifacts DIR` records that folder, wherever it is, so that field cannot be
 * confined to the run folder): it must be a folder with a regular-file manifest.json, and every file
 * the manifest names is confined to the folder. A tampered config can thus only point at another
 * artifacts folder, never make export copy or eval read an arbitrary file, FIFO or device.
 */
export function readManifest(dir: string): Manifest {
  const file = path.join(dir, 'manifest.json');
  let st: fs.Stats | undefined;
  try {
    st = fs.statSync(dir);
  } catch {
    // reported below as "no manifest.json"
  }
  if (st) checkKind(dir, st, 'directory', `${dir}: not an artifacts folder`);
  if (st) resolveInside(dir, 'manifest.json', { source: `${dir}: artifacts manifest`, optional: true });
  let m: Manifest;
  try {
    m = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new ModtuneError(code === 'ENOENT' ? `${dir}: not an artifacts folder (no manifest.json)` : `${file}: not valid JSON (${(e as Error).message})`);
  }
  if (typeof m !== 'object' || m === null || Array.isArray(m)) throw new ModtuneError(`${file}: should be a JSON object`);
  if (m.format !== MANIFEST_FORMAT) throw new ModtuneError(`${file}: field 'format' is '${m.format}', expected '${MANIFEST_FORMAT}'`);
  if (typeof m.version !== 'number' || m.version > MANIFEST_VERSION) {
    throw new ModtuneError(`${file}: manifest version ${m.version} is newer than this modtune understands (${MANIFEST_VERSION}); upgrade modtune`);
  }
  checkManifestPaths(m, dir, file);
  return m;
}

/**
 * Every file a manifest names is a relative path inside the artifacts folder and a regular file:
 * a manifest is untrusted, and training, export and eval read (or copy into a delta) what it names.
 */
function checkManifestPaths(m: Manifest, dir: string, file: string): void {
  const inside = (rel: unknown, field: string, optional = false): void => {
    resolveInside(dir, rel, { source: `${file}: field '${field}'`, optional });
  };
  inside(m.initialValues, 'initialValues');
  if (m.masks !== null && m.masks !== undefined) inside(m.masks, 'masks');
  if (typeof m.tokenizer !== 'object' || m.tokenizer === null) throw new ModtuneError(`${file}: field 'tokenizer' should be an object`);
  if (m.tokenizer.file !== null) inside(m.tokenizer.file, 'tokenizer.file');
  if (m.native) {
    for (const key of ['trainStep', 'gradient', 'eval', 'infer'] as const) inside(m.native[key]?.file, `native.${key}.file`);
    inside(m.native.weights, 'native.weights');
    const fp = m.native.frozenPrefix;
    if (fp !== undefined) {
      if (typeof fp !== 'object' || fp === null) throw new ModtuneError(`${file}: field 'native.frozenPrefix' should be an object`);
      if (!Number.isSafeInteger(fp.layer) || fp.layer < 1) throw new ModtuneError(`${file}: field 'native.frozenPrefix.layer' should be an integer ≥ 1, got ${JSON.stringify(fp.layer)}`);
      if (!Number.isSafeInteger(fp.hiddenSize) || fp.hiddenSize < 1) throw new ModtuneError(`${file}: field 'native.frozenPrefix.hiddenSize' should be a positive integer, got ${JSON.stringify(fp.hiddenSize)}`);
      for (const key of ['prefix', 'trainStep', 'gradient', 'eval'] as const) inside(fp[key]?.file, `native.frozenPrefix.${key}.file`);
    }
  }
  if (m.ort) {
    for (const key of ['training', 'eval', 'optimizer', 'checkpoint'] as const) inside(m.ort[key], `ort.${key}`);
  }
}
