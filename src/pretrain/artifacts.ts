/**
 * The masked-LM training graphs: a BERT built with its prediction head over the masked positions
 * only, the cross-entropy over those positions, BERT's dropout, and the native train-step, gradient
 * and eval models of the chosen parameters — the same autodiff and optimizer graphs as fine-tuning.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { buildBert } from '../bert/build.js';
import type { BertConfig } from '../bert/config.js';
import { writeSafetensors } from '../bert/safetensors.js';
import { MLM_HEAD, type WeightMap } from '../bert/weights.js';
import { upgradeOpset } from '../autodiff/opset.js';
import { decays } from '../artifacts/generate.js';
import { exposeTrainableParameters } from '../artifacts/expose.js';
import { MANIFEST_FORMAT, MANIFEST_VERSION, type Manifest } from '../artifacts/manifest.js';
import { buildNativeModels, describeModel, type NativeParam } from '../artifacts/native/build.js';
import { DEFAULT_ADAMW, type OptimizerConfig } from '../artifacts/native/optimizer.js';
import { addEncoderDropout, dropoutRates } from '../heads/index.js';
import { addLoss } from '../heads/loss.js';
import { discoverParameters, selectParameters, unshareParameters } from '../modules/index.js';
import type { ParameterInfo } from '../modules/types.js';
import { cloneModel, type Model } from '../onnx/graph.js';
import { saveModelsSharedWeights, writeAtomic } from '../onnx/io.js';
import { tensorFloat32 } from '../onnx/tensor.js';
import { VERSION } from '../version.js';

export interface MlmArtifactOptions {
  config: BertConfig;
  /** Starting weights (Hugging Face names); absent: BERT's seeded initialisation. */
  weights?: WeightMap;
  weightsLabel?: string;
  /** Selection spec over the encoder (`full`, `layernorm`, …); the MLM head trains unless `freezeHead`. */
  train: string;
  freezeHead?: boolean;
  seed: number;
  /** Dropout override; default: the config's rates. */
  dropout?: number;
  lr: number;
  weightDecay: number;
  maxGradNorm: number;
  warmupSteps: number;
  totalSteps: number;
  out: string;
}

export interface MlmArtifacts {
  dir: string;
  manifest: Manifest;
  /** Every weight of the model being pre-trained (Hugging Face names), for writing the model folder. */
  weights: WeightMap;
}

/**
 * The MLM head's parameters as selection records. They belong to no encoder module; the manifest
 * files them under `classifier`, the task head, which is what they are for this task.
 */
function headParameters(model: Model): ParameterInfo[] {
  const names = [`${MLM_HEAD.dense}.weight`, `${MLM_HEAD.dense}.bias`, `${MLM_HEAD.layerNorm}.weight`, `${MLM_HEAD.layerNorm}.bias`, MLM_HEAD.bias];
  return names.map((name) => {
    const t = model.graph.initializers.get(name)!;
    const shape = [...t.dims];
    return { name, hfName: name, module: 'classifier', layer: null, role: name.endsWith('weight') ? 'weight' : 'bias', shape, hfShape: shape, transposed: false, size: shape.reduce((a, b) => a * b, 1) };
  });
}

/** Build the masked-LM training artifacts into `out` (a fresh folder, written atomically). */
export function generateMlmArtifacts(opts: MlmArtifactOptions): MlmArtifacts {
  const base = buildBert({ config: opts.config, weights: opts.weights, weightsLabel: opts.weightsLabel, seed: opts.seed, mlmHead: 'masked', pooler: false });
  const V = opts.config.vocabSize;
  addLoss(base.graph, 'classification', 'masked', ['masked', V]);
  const evalModel = cloneModel(base);
  const train = cloneModel(base);
  addEncoderDropout(train, dropoutRates(base, opts.dropout), { label: 'masked-LM model' });

  // Encoder parameters are discovered and selected as for fine-tuning; the head is added by name.
  const structure = discoverParameters(base, { label: 'masked-LM model' });
  const selection = selectParameters(structure, opts.train, { seed: opts.seed, freezeHead: true, values: structure.values });
  const selected = [...selection.parameters, ...(opts.freezeHead ? [] : headParameters(base))];
  const masks = selection.masks;
  // The builder's initializers are exactly the model's parameters, in Hugging Face names and layout.
  const weights: WeightMap = new Map([...base.graph.initializers].map(([k, t]) => [k, { shape: [...t.dims], data: tensorFloat32(t) }]));

  const prepare = (m: Model) => {
    const params = selected.map((p) => ({ ...p }));
    unshareParameters(m, params);
    const exposed = exposeTrainableParameters(m, params);
    upgradeOpset(m, 17);
    return exposed;
  };
  const exposed = prepare(train);
  prepare(evalModel);
  const params: NativeParam[] = exposed.map((e) => ({ ...e, decay: decays(e.info), mask: masks.get(e.info.name) }));
  const optimizer: OptimizerConfig = { ...DEFAULT_ADAMW, weightDecay: opts.weightDecay, maxGradNorm: opts.maxGradNorm };
  const models = buildNativeModels(train, evalModel, evalModel, params, optimizer);

  const out = path.resolve(opts.out);
  const tmp = `${out}.tmp-${process.pid}`;
  fs.rmSync(tmp, { recursive: true, force: true });
  fs.mkdirSync(path.join(tmp, 'native'), { recursive: true });
  try {
    writeSafetensors(path.join(tmp, 'params.safetensors'), new Map(params.map((p) => [p.name, { shape: p.shape, data: p.initial }])), { format: 'pt' });
    const entries = [
      { model: models.trainStep, file: path.join(tmp, 'native', 'train_step.onnx') },
      { model: models.gradient, file: path.join(tmp, 'native', 'gradient.onnx') },
      { model: models.eval, file: path.join(tmp, 'native', 'eval.onnx') },
    ];
    saveModelsSharedWeights(entries, path.join(tmp, 'native', 'weights.bin'));
    const paramNames = new Set(params.map((p) => p.name));
    const rel = (f: string) => path.relative(tmp, f);
    const evalSpec = describeModel(models.eval, rel(entries[2]!.file), paramNames);
    const manifest: Manifest = {
      format: MANIFEST_FORMAT,
      version: MANIFEST_VERSION,
      modtuneVersion: VERSION,
      createdAt: new Date().toISOString(),
      base: { file: opts.weightsLabel ?? '(initialised)', sha256: '', family: structure.family, numLayers: structure.numLayers, hiddenSize: structure.hiddenSize, totalParameters: [...weights.values()].reduce((s, t) => s + t.data.length, 0), vocabSize: V },
      task: { name: 'masked-lm', head: { kind: 'classification', numLabels: V }, labels: null, headReused: !!opts.weights },
      selection: { spec: opts.train, trainableCount: params.reduce((s, p) => s + (p.mask ? p.mask.reduce((a, b) => a + b, 0) : p.initial.length), 0), totalCount: structure.totalCount, freezeHead: !!opts.freezeHead, seed: opts.seed },
      parameters: params.map((p) => ({
        name: p.name, module: p.info.module, layer: p.info.layer, role: p.info.role, shape: p.shape, size: p.initial.length,
        trainableEntries: p.mask ? p.mask.reduce((s, v) => s + v, 0) : p.initial.length, mask: null,
        weightDecay: optimizer.weightDecay !== 0 && p.decay, baseInitializer: p.info.name, baseTransposed: p.info.transposed,
      })),
      initialValues: 'params.safetensors',
      masks: null,
      optimizer: { name: 'adamw', lr: opts.lr, beta1: optimizer.beta1, beta2: optimizer.beta2, epsilon: optimizer.epsilon, weightDecay: optimizer.weightDecay, schedule: { kind: 'linear', warmupSteps: opts.warmupSteps, totalSteps: opts.totalSteps }, maxGradNorm: opts.maxGradNorm },
      dropout: { override: opts.dropout ?? null, rates: dropoutRates(base, opts.dropout) },
      tokenizer: { file: null, lowercase: true, maxLength: opts.config.maxPositionEmbeddings },
      native: {
        trainStep: describeModel(models.trainStep, rel(entries[0]!.file), paramNames, models.dropoutMasks),
        gradient: describeModel(models.gradient, rel(entries[1]!.file), paramNames, models.dropoutMasks),
        eval: evalSpec,
        infer: evalSpec,
        weights: 'native/weights.bin',
      },
    };
    writeAtomic(path.join(tmp, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
    fs.rmSync(out, { recursive: true, force: true });
    fs.renameSync(tmp, out);
    return { dir: out, manifest, weights };
  } catch (e) {
    fs.rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
}
