/**
 * The `ort/` folder of an artifacts directory: ONNX Runtime on-device-training artifacts that the
 * onnxruntime-web 1.19.2 training build (and ORT's native training API) can train with.
 *
 *   training_model.onnx   forward + backward + gradient accumulation (ORT's layout)
 *   eval_model.onnx       forward + loss, standard ops
 *   optimizer_model.onnx  AdamW (or SGD through AdamWOptimizer) with the schedule baked in
 *   checkpoint            ODTC v2: trainable parameters, then frozen weights
 *
 * Frozen weights (float initializers of at least FROZEN_MIN_BYTES shared by the train and eval
 * models) move into the checkpoint as frozen parameters, as ORT's own tooling does: the two
 * sessions then share one copy and the model files stay small. Smaller constants stay in the
 * models.
 */
import type { OrtFiles } from '../manifest.js';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ModtuneError } from '../../errors.js';
import { buildBackward } from '../../autodiff/index.js';
import { DataType } from '../../onnx/dtype.js';
import { Model, cloneModel } from '../../onnx/graph.js';
import { saveModel } from '../../onnx/io.js';
import type { LrSchedule } from '../manifest.js';
import type { NativeParam } from '../native/build.js';
import type { OptimizerConfig } from '../native/optimizer.js';
import { writeCheckpoint } from './checkpoint.js';
import { buildOrtOptimizerModel, resolveOrtWeightDecay } from './optimizer.js';
import { buildOrtCheckpoint, buildOrtTrainingModels } from './training-model.js';

export const ORT_FILES = {
  training: 'training_model.onnx',
  eval: 'eval_model.onnx',
  optimizer: 'optimizer_model.onnx',
  checkpoint: 'checkpoint',
} as const;

/** Frozen float initializers at least this big become frozen checkpoint parameters. */
export const FROZEN_MIN_BYTES = 1024;

export type OrtArtifactsManifest = OrtFiles;

export interface WriteOrtArtifactsOptions {
  /** Headed train model (dropout on, outputs loss and logits), trainable parameters exposed as graph inputs. */
  train: Model;
  /** Headed eval model, prepared the same way. */
  eval: Model;
  /** Trainable parameters (graph input names, values, decay flags, masks), in checkpoint order. */
  params: NativeParam[];
  optimizer: OptimizerConfig;
  lr: number;
  schedule: LrSchedule;
  /** The folder to write (created); manifest paths are relative to its parent. */
  dir: string;
  /** 'exact' (default) refuses weight decay that one group-wide value cannot reproduce; see resolveOrtWeightDecay. */
  weightDecayPolicy?: 'exact' | 'decay-all';
}

export function writeOrtArtifacts(opts: WriteOrtArtifactsOptions): { files: string[]; manifest: OrtArtifactsManifest } {
  const { params, optimizer, schedule } = opts;
  if (params.length === 0) throw new ModtuneError('--format ort: the selection has no trainable parameters');
  if (schedule.kind === 'linear' && schedule.totalSteps < 1) {
    throw new ModtuneError('--format ort: the linear schedule is baked into the optimizer graph, so the number of steps must be known now; pass --total-steps (or use --lr-schedule constant)');
  }
  const weightDecay = resolveOrtWeightDecay(
    params.map((p) => ({ name: p.name, decay: p.decay, masked: !!p.mask })),
    optimizer.weightDecay,
    opts.weightDecayPolicy,
  );

  const trainable = params.map((p) => p.name);
  const withBackward = cloneModel(opts.train);
  const { gradients } = buildBackward(withBackward.graph, { loss: 'loss', wrt: trainable });
  const built = buildOrtTrainingModels(withBackward, {
    loss: 'loss',
    trainable,
    frozen: sharedWeights(opts.train, opts.eval, new Set(trainable)),
    gradients,
    values: new Map(params.map((p) => [p.name, { dims: p.shape, data: p.initial }])),
    masks: new Map(params.filter((p) => p.mask).map((p) => [p.name, p.mask!])),
    userOutputs: ['loss', 'logits'],
    evalForward: opts.eval,
  });
  const optimizerModel = buildOrtOptimizerModel({ ...optimizer, lr: opts.lr, weightDecay, schedule });

  fs.mkdirSync(opts.dir, { recursive: true });
  const at = (f: string) => path.join(opts.dir, f);
  const files = [
    ...saveModel(built.training, at(ORT_FILES.training)),
    ...saveModel(built.eval, at(ORT_FILES.eval)),
    ...saveModel(optimizerModel, at(ORT_FILES.optimizer)),
    ...writeCheckpoint(buildOrtCheckpoint(built.parameters, new Set(trainable)), at(ORT_FILES.checkpoint)),
  ];
  const rel = (f: string) => path.join(path.basename(opts.dir), f).split(path.sep).join('/');
  const userInputs = built.training.graph.inputs.map((i) => i.name).filter((n) => !built.parameters.some((p) => p.name === n)).filter((n) => !n.endsWith('_grad.accumulation.buffer') && n !== 'lazy_reset_grad');
  return {
    files,
    manifest: {
      training: rel(ORT_FILES.training),
      eval: rel(ORT_FILES.eval),
      optimizer: rel(ORT_FILES.optimizer),
      checkpoint: rel(ORT_FILES.checkpoint),
      trainableOrder: trainable,
      userInputs,
      userOutputs: built.eval.graph.outputs.map((o) => o.name),
    },
  };
}

/** Frozen weights: float initializers of both models, same shape, at least FROZEN_MIN_BYTES. */
function sharedWeights(train: Model, evalModel: Model, trainable: Set<string>): string[] {
  const out: string[] = [];
  for (const [name, t] of train.graph.initializers) {
    if (trainable.has(name) || t.dataType !== DataType.FLOAT || t.raw.byteLength < FROZEN_MIN_BYTES) continue;
    const e = evalModel.graph.initializers.get(name);
    if (!e || e.dims.length !== t.dims.length || e.dims.some((d, i) => d !== t.dims[i])) continue;
    out.push(name);
  }
  return out;
}
