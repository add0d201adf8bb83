/**
 * The training and eval models of ORT's on-device-training artifacts, built from a forward graph
 * whose backward nodes were already appended (autodiff's buildBackward).
 *
 * Training model inputs, in order: the user inputs; every parameter (trainable, then frozen — the
 * checkpoint's order, which is also the order getContiguousParameters returns); one
 * `<param>_grad.accumulation.buffer` per trainable parameter; `lazy_reset_grad` BOOL[1]. Outputs:
 * the user outputs (loss first), then `<param>_grad.accumulation.out` BOOL[1] per trainable
 * parameter, each from `com.microsoft.InPlaceAccumulatorV2(buffer, gradient, lazy_reset_grad)`,
 * which adds the step's gradient into the runtime-owned buffer (or overwrites it after a reset).
 *
 * The runtime sorts graph inputs by name alone: a checkpoint name is a parameter, `lazy_reset_grad`
 * the reset flag, a name ending in `_grad`, `_grad.accumulation.buffer` or `_grad.accumulation.out`
 * a gradient, anything else a user input; outputs with those suffixes are hidden. User input and
 * output names are checked against these rules.
 *
 * Masked parameters (only some entries train) get their gradient multiplied by the 0/1 mask before
 * accumulation, so their moments stay 0 and AdamW leaves those entries exactly where they were
 * (unless weight decay is on: see optimizer.ts).
 */
import { ModtuneError } from '../../errors.js';
import { DataType, dataTypeName } from '../../onnx/dtype.js';
import { Graph, Model, ValueInfo, cloneModel } from '../../onnx/graph.js';
import { Tensor, makeTensor, numel, tensorFloat32 } from '../../onnx/tensor.js';
import { Checkpoint, CkptTensor, ckptTensorF32, emptyProperties } from './checkpoint.js';

export const LAZY_RESET_GRAD = 'lazy_reset_grad';
export const gradBufferName = (param: string) => `${param}_grad.accumulation.buffer`;
export const gradOutName = (param: string) => `${param}_grad.accumulation.out`;
/** ORT's loss gradient seed name. */
export const lossSeedName = (loss: string) => `${loss}_grad`;

const GRADIENT_SUFFIXES = ['_grad', '_grad.accumulation.buffer', '_grad.accumulation.out'];

export interface OrtParameter {
  name: string;
  dims: number[];
  data: Float32Array;
  trainable: boolean;
}

export interface OrtTrainingModelOptions {
  /** Name of the scalar loss value (a graph output, or made one). */
  loss: string;
  /** Trainable parameters (initializers of `forward`, or inputs with `values`), in checkpoint order. */
  trainable: string[];
  /** Parameter → its gradient value in `forward` (from buildBackward). */
  gradients: Map<string, string>;
  /**
   * Frozen parameters to move into the checkpoint as well (initializers of `forward`). Initializers
   * not listed here stay constants of both models (ORT can then constant-fold them).
   */
  frozen?: string[];
  /** User inputs, in order (default: the forward graph's inputs that are not parameters). */
  userInputs?: string[];
  /** User outputs (default: the forward graph's outputs); the loss is moved first. */
  userOutputs?: string[];
  /** 0/1 per entry (1 = trains) for partially trained parameters. */
  masks?: Map<string, Uint8Array>;
  /** Values of parameters that are graph inputs of `forward` rather than initializers. */
  values?: Map<string, { dims: number[]; data: Float32Array }>;
  /**
   * The forward graph for evaluation (e.g. without dropout), with the same parameters as
   * initializers. Default: `forward` without its backward nodes.
   */
  evalForward?: Model;
  /**
   * The value the backward pass seeds as d(loss)/d(loss), if it is an initializer: it is renamed
   * to `<loss>_grad` as ORT's tooling names it. Otherwise `<loss>_grad` = 1.0 is added.
   */
  lossSeed?: string;
}

export interface OrtTrainingModels {
  training: Model;
  eval: Model;
  /** Checkpoint content, in checkpoint order (trainable first). */
  parameters: OrtParameter[];
}

export function buildOrtTrainingModels(forward: Model, opts: OrtTrainingModelOptions): OrtTrainingModels {
  const trainable = [...opts.trainable];
  const frozen = [...(opts.frozen ?? [])];
  const paramNames = [...trainable, ...frozen];
  const paramSet = new Set(paramNames);
  const trainableSet = new Set(trainable);
  if (paramSet.size !== paramNames.length) {
    const dup = paramNames.find((n, i) => paramNames.indexOf(n) !== i)!;
    throw new ModtuneError(`ORT artifacts: parameter '${dup}' is listed twice (trainable and frozen lists must be disjoint)`);
  }
  if (trainable.length === 0) throw new ModtuneError('ORT artifacts: no trainable parameters; ORT\'s optimizer needs at least one');

  const training = cloneModel(forward);
  const g = training.graph;
  const parameters = paramNames.map((name): OrtParameter => {
    const t = g.initializers.get(name);
    if (!t) return parameterFromInput(g, name, opts.values?.get(name), trainableSet.has(name), 'training');
    if (t.dataType !== DataType.FLOAT) {
      throw new ModtuneError(`ORT artifacts: parameter '${name}' is ${dataTypeName(t.dataType)}; ORT's training runtime handles float32 parameters only`);
    }
    return { name, dims: [...t.dims], data: tensorFloat32(t), trainable: trainableSet.has(name) };
  });
  const paramInfo = new Map(parameters.map((p) => [p.name, { name: p.name, elemType: DataType.FLOAT, shape: [...p.dims] } as ValueInfo]));

  const userInputs = opts.userInputs ?? g.inputs.map((i) => i.name).filter((n) => !paramSet.has(n) && !g.initializers.has(n));
  const userOutputs = orderOutputs(opts.userOutputs ?? g.outputs.map((o) => o.name), opts.loss);
  checkUserNames(userInputs, 'input', paramSet);
  checkUserNames(userOutputs, 'output', paramSet);

  // Training graph: parameters become inputs, gradients accumulate into runtime-owned buffers.
  for (const p of paramNames) { g.initializers.delete(p); g.valueInfo.delete(p); }
  const inputOf = (name: string): ValueInfo => {
    const v = g.inputs.find((i) => i.name === name);
    if (!v) throw new ModtuneError(`ORT artifacts: user input '${name}' is not an input of the forward graph`);
    return v;
  };
  const outputOf = (graph: Graph, name: string, what: string): ValueInfo => {
    const v = graph.outputs.find((o) => o.name === name) ?? graph.valueInfo.get(name);
    if (v) return { ...v, name };
    if (name === opts.loss) return { name, elemType: DataType.FLOAT, shape: [] };
    throw new ModtuneError(`ORT artifacts: ${what} output '${name}' is not an output of the forward graph`);
  };
  if (!g.producer(opts.loss) && !g.isGraphInput(opts.loss)) throw new ModtuneError(`ORT artifacts: loss '${opts.loss}' is not computed by the forward graph`);
  const newInputs: ValueInfo[] = [...userInputs.map(inputOf), ...paramNames.map((p) => paramInfo.get(p)!)];
  const newOutputs: ValueInfo[] = userOutputs.map((o) => outputOf(g, o, 'user'));

  attachLossSeed(g, opts.loss, opts.lossSeed);
  const resetFlag = g.reserveName(LAZY_RESET_GRAD);
  const bufferInputs: ValueInfo[] = [];
  for (const p of trainable) {
    let grad = opts.gradients.get(p);
    if (!grad) throw new ModtuneError(`ORT artifacts: no gradient for trainable parameter '${p}' (the loss may not depend on it)`);
    if (!g.producer(grad) && !g.initializers.has(grad) && !paramSet.has(grad) && !userInputs.includes(grad)) {
      throw new ModtuneError(`ORT artifacts: gradient '${grad}' of parameter '${p}' is not computed by the graph`);
    }
    const mask = opts.masks?.get(p);
    if (mask) grad = applyMask(g, p, grad, mask, paramInfo.get(p)!.shape as number[]);
    const buffer = g.reserveName(gradBufferName(p));
    const out = g.reserveName(gradOutName(p));
    g.addNode({ opType: 'InPlaceAccumulatorV2', domain: 'com.microsoft', name: `/ort/accumulate/${p}`, inputs: [buffer, grad, resetFlag], outputs: [out] });
    bufferInputs.push({ name: buffer, elemType: DataType.FLOAT, shape: [...paramInfo.get(p)!.shape!] });
    newOutputs.push({ name: out, elemType: DataType.BOOL, shape: [1] });
  }
  g.inputs = [...newInputs, ...bufferInputs, { name: resetFlag, elemType: DataType.BOOL, shape: [1] }];
  g.outputs = newOutputs;
  for (const v of [...g.inputs, ...g.outputs]) g.valueInfo.delete(v.name);
  // Backward work towards values nobody trains (e.g. frozen weights' gradients) is dropped here.
  const seed = g.initializers.get(lossSeedName(opts.loss))!;
  g.removeDeadNodes();
  if (!g.initializers.has(seed.name)) g.initializers.set(seed.name, seed);
  setOpsets(training, true);
  training.irVersion = Math.max(training.irVersion, 7);

  // Eval graph: the forward (or the given eval forward) with the same parameter inputs, standard ops only.
  const evalModel = cloneModel(opts.evalForward ?? forward);
  const eg = evalModel.graph;
  for (const p of parameters) {
    const t = eg.initializers.get(p.name);
    const dims = t ? t.dims : parameterFromInput(eg, p.name, { dims: p.dims, data: p.data }, p.trainable, 'eval').dims;
    if (dims.length !== p.dims.length || dims.some((d, i) => d !== p.dims[i])) {
      throw new ModtuneError(`ORT artifacts: parameter '${p.name}' has shape [${dims.join(', ')}] in the eval model, [${p.dims.join(', ')}] in the training model`);
    }
    eg.initializers.delete(p.name);
    eg.valueInfo.delete(p.name);
  }
  const evalOutputs = userOutputs.map((o) => outputOf(eg, o, 'eval'));
  for (const o of evalOutputs) {
    if (!eg.producer(o.name) && !eg.isGraphInput(o.name)) throw new ModtuneError(`ORT artifacts: output '${o.name}' is not computed by the eval model`);
  }
  const evalUserInputs = userInputs.filter((n) => eg.isGraphInput(n)).map((n) => eg.inputs.find((i) => i.name === n)!);
  eg.outputs = evalOutputs;
  eg.inputs = [...evalUserInputs, ...paramNames.map((p) => paramInfo.get(p)!)];
  eg.removeDeadNodes();
  for (const v of [...eg.inputs, ...eg.outputs]) eg.valueInfo.delete(v.name);
  const foreign = eg.nodes.find((n) => n.domain === 'com.microsoft' && /Grad|InPlaceAccumulator/.test(n.opType));
  if (foreign) throw new ModtuneError(`ORT artifacts: eval model still contains training op '${foreign.opType}' (${foreign.name})`);
  setOpsets(evalModel, false);
  evalModel.irVersion = Math.max(evalModel.irVersion, 7);

  return { training, eval: evalModel, parameters };
}

/** A parameter that is already a graph input: its value comes from `value`, its shape must agree. */
function parameterFromInput(g: Graph, name: string, value: { dims: number[]; data: Float32Array } | undefined, trainable: boolean, which: string): OrtParameter {
  const input = g.inputs.find((i) => i.name === name);
  if (!input) throw new ModtuneError(`ORT artifacts: parameter '${name}' is neither an initializer nor an input of the ${which} model`);
  if (!value) throw new ModtuneError(`ORT artifacts: parameter '${name}' is an input of the ${which} model; give its value (values)`);
  if (input.elemType !== DataType.FLOAT) {
    throw new ModtuneError(`ORT artifacts: parameter '${name}' is ${dataTypeName(input.elemType)}; ORT's training runtime handles float32 parameters only`);
  }
  if (value.data.length !== numel(value.dims)) throw new ModtuneError(`ORT artifacts: value of '${name}' has ${value.data.length} entries for shape [${value.dims.join(', ')}]`);
  const declared = input.shape;
  if (declared && (declared.length !== value.dims.length || declared.some((d, i) => typeof d === 'number' && d !== value.dims[i]))) {
    throw new ModtuneError(`ORT artifacts: parameter '${name}' is declared [${declared.join(', ')}] in the ${which} model, its value is [${value.dims.join(', ')}]`);
  }
  return { name, dims: [...value.dims], data: value.data, trainable };
}

/** The loss first, then the other outputs in their order. */
function orderOutputs(outputs: string[], loss: string): string[] {
  return [loss, ...outputs.filter((o) => o !== loss)];
}

function checkUserNames(names: string[], kind: 'input' | 'output', params: Set<string>): void {
  for (const n of names) {
    if (params.has(n)) throw new ModtuneError(`ORT artifacts: user ${kind} '${n}' has a parameter's name`);
    if (n === LAZY_RESET_GRAD) throw new ModtuneError(`ORT artifacts: user ${kind} '${n}' collides with ORT's reset flag`);
    const suffix = GRADIENT_SUFFIXES.find((s) => n.endsWith(s));
    if (suffix) throw new ModtuneError(`ORT artifacts: user ${kind} '${n}' ends in '${suffix}', which ORT's runtime takes for a gradient; rename it`);
  }
}

/** Make `<loss>_grad` = 1.0 the loss gradient seed, renaming the backward pass's own seed if given. */
function attachLossSeed(g: Graph, loss: string, seed: string | undefined): void {
  const name = lossSeedName(loss);
  if (seed && seed !== name) {
    const t = g.initializers.get(seed);
    if (!t) throw new ModtuneError(`ORT artifacts: loss seed '${seed}' is not an initializer`);
    const values = tensorFloat32(t);
    if (values.length !== 1 || values[0] !== 1) throw new ModtuneError(`ORT artifacts: loss seed '${seed}' should be a single 1.0`);
    if (g.initializers.has(name) || g.producer(name)) throw new ModtuneError(`ORT artifacts: cannot name the loss seed '${name}': already in use`);
    g.initializers.delete(seed);
    g.initializers.set(name, { ...t, name });
    g.replaceUses(seed, name);
    return;
  }
  const existing: Tensor | undefined = g.initializers.get(name);
  if (existing) {
    const v = tensorFloat32(existing);
    if (v.length !== 1 || v[0] !== 1) throw new ModtuneError(`ORT artifacts: '${name}' exists but is not the loss seed 1.0`);
    return;
  }
  if (g.producer(name) || g.isGraphInput(name)) throw new ModtuneError(`ORT artifacts: '${name}' is already a value of the graph; ORT reserves it for the loss gradient seed`);
  g.initializers.set(name, makeTensor(name, DataType.FLOAT, [], new Float32Array([1])));
}

function applyMask(g: Graph, param: string, grad: string, mask: Uint8Array, shape: number[]): string {
  if (mask.length !== numel(shape)) {
    throw new ModtuneError(`ORT artifacts: mask of '${param}' has ${mask.length} entries, the parameter has ${numel(shape)}`);
  }
  const values = new Float32Array(mask.length);
  for (let i = 0; i < mask.length; i++) values[i] = mask[i] ? 1 : 0;
  const maskName = g.addInitializer(makeTensor(`${param}.grad_mask`, DataType.FLOAT, shape, values));
  return g.addNode({ opType: 'Mul', name: `/ort/mask/${param}`, inputs: [grad, maskName] }).outputs[0]!;
}

/**
 * Keep the model's ai.onnx version (raising it would change the meaning of ops such as Squeeze or
 * ReduceSum) and add com.microsoft 1 to the training model for its accumulator op.
 */
function setOpsets(model: Model, training: boolean): void {
  if (!model.opsetImports.some((o) => o.domain === '' || o.domain === 'ai.onnx')) model.opsetImports.unshift({ domain: '', version: 17 });
  if (training && !model.opsetImports.some((o) => o.domain === 'com.microsoft')) model.opsetImports.push({ domain: 'com.microsoft', version: 1 });
}

// ---- checkpoint ------------------------------------------------------------------------------

export interface OrtOptimizerState {
  /** Optimizer steps already taken (the next step runs with step + 1). */
  step: number;
  /** AdamW moments per trainable parameter: [first, second]. Missing parameters start at zero. */
  moments?: Map<string, [Float32Array, Float32Array]>;
}

/**
 * A checkpoint holding `params` (trainable ones in requires_grad_params, the rest frozen, each list
 * in the given order) and, for resuming, ORT's optimizer state: group `group0` with `momentum0` and
 * `momentum1` for every trainable parameter (the runtime requires both or none; a group with any
 * other name is silently ignored by it).
 */
export function buildOrtCheckpoint(
  params: { name: string; dims: number[]; data: Float32Array }[],
  trainable: Set<string>,
  opts: { optimizer?: OrtOptimizerState; properties?: Checkpoint['properties'] } = {},
): Checkpoint {
  const known = new Set(params.map((p) => p.name));
  for (const t of trainable) if (!known.has(t)) throw new ModtuneError(`ORT checkpoint: trainable parameter '${t}' has no value`);
  const tensors = params.map((p) => ckptTensorF32(p.name, p.dims, p.data));
  const ckpt: Checkpoint = {
    trainable: tensors.filter((t) => trainable.has(t.name)),
    frozen: tensors.filter((t) => !trainable.has(t.name)),
    isNominal: false,
    optimizerGroups: [],
    properties: opts.properties ?? emptyProperties(),
  };
  const o = opts.optimizer;
  if (o) {
    if (!Number.isSafeInteger(o.step) || o.step < 0) throw new ModtuneError(`ORT checkpoint: optimizer step must be an integer ≥ 0, got ${o.step}`);
    for (const name of o.moments?.keys() ?? []) {
      if (!trainable.has(name)) throw new ModtuneError(`ORT checkpoint: moments given for '${name}', which is not trainable`);
    }
    ckpt.optimizerGroups.push({
      name: 'group0',
      step: o.step,
      initialLearningRate: 0,
      states: ckpt.trainable.map((t) => {
        const m = o.moments?.get(t.name);
        const n = numel(t.dims);
        const moment = (i: 0 | 1): CkptTensor => {
          const values = m ? m[i] : new Float32Array(n);
          if (values.length !== n) throw new ModtuneError(`ORT checkpoint: moment ${i} of '${t.name}' has ${values.length} values, expected ${n}`);
          return ckptTensorF32(`momentum${i}`, t.dims, values);
        };
        return { param: t.name, momentums: [moment(0), moment(1)] };
      }),
    });
  }
  return ckpt;
}
