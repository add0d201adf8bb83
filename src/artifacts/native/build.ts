import { buildBackward } from '../../autodiff/index.js';
import { DataType } from '../../onnx/dtype.js';
import { inferShapes } from '../../onnx/shapes.js';
import { tensorNumbers } from '../../onnx/tensor.js';
import type { Graph, Model, Node, ValueInfo } from '../../onnx/graph.js';
import { A, attrString, attrTensor, cloneModel } from '../../onnx/graph.js';
import { lowerDropouts } from '../../heads/index.js';
import type { ExposedParameter } from '../expose.js';
import type { IoRole, IoSpec, ModelSpec } from '../manifest.js';
import { appendOptimizerUpdate, OptimizerConfig, stateNames } from './optimizer.js';
import { dropoutsToMaskInputs, recastMasksForBackward } from './dropout-inputs.js';
import { fuseTransposedOperands } from './transposed-matmuls.js';
import { shapesFromBatchInput } from './batch-shapes.js';

/** Graph input names of the native training models' scalar controls. */
export const NATIVE_IO = { lr: 'learning_rate', step: 'step', gradScale: 'grad_scale' } as const;

export const accumulatorName = (p: string) => `${p}.grad_accumulator`;
export const accumulatorUpdatedName = (p: string) => `${p}.grad_accumulator.updated`;
/** An embedding table's gradient as the looked-up rows' gradients and their row indices (see below). */
export const gradRowsName = (p: string) => `${p}.grad_rows`;
export const gradRowIndicesName = (p: string) => `${p}.grad_row_indices`;
/** Tables with more rows than this give their gradient as rows: more than 32 × 128 tokens look up. */
const ROWS_FORM_MIN_ROWS = 4096;

export interface NativeParam extends ExposedParameter {
  decay: boolean;
  mask?: Uint8Array;
}

export interface NativeModels {
  trainStep: Model;
  gradient: Model;
  eval: Model;
  infer: Model;
  /** The training models' dropout-mask inputs and their drop ratios (dropout-inputs.ts). */
  dropoutMasks: Map<string, number>;
}

const scalar = (name: string): ValueInfo => ({ name, elemType: DataType.FLOAT, shape: [] });
const like = (name: string, shape: number[]): ValueInfo => ({ name, elemType: DataType.FLOAT, shape: [...shape] });

/**
 * Build the native (standard-ops) training models from a headed train model and eval model whose
 * trainable parameters are already graph inputs (see `exposeTrainableParameters`).
 *
 * - gradient:  batch, params, accumulators, dropout masks → loss, logits, accumulators + this batch's
 *              gradient (an embedding table's gradient: its looked-up rows' gradients and indices)
 * - trainStep: batch, params, accumulators, moments, learning_rate, step, grad_scale → loss, logits,
 *              updated params and moments, using gradient = (accumulator + this batch's gradient) × grad_scale
 * Gradient accumulation over K micro-batches runs `gradient` K−1 times, then `trainStep` once with
 * grad_scale = 1/K; without accumulation, `trainStep` alone with zero accumulators and grad_scale 1.
 * The forward pass exists once per run either way.
 */
export function buildNativeModels(train: Model, evalModel: Model, infer: Model, params: NativeParam[], optimizer: OptimizerConfig): NativeModels {
  const wrt = params.map((p) => p.name);
  const withGrad = cloneModel(train);
  const dropoutMasks = dropoutsToMaskInputs(withGrad);
  const forward = new Set(withGrad.graph.nodes);
  const { gradients } = buildBackward(withGrad.graph, { loss: 'loss', wrt });
  recastMasksForBackward(withGrad, dropoutMasks, forward);
  // One shape inference serves the passes below: none changes the shape of a value that exists.
  const shapes = inferShapes(withGrad);
  fuseTransposedOperands(withGrad, shapes);
  shapesFromBatchInput(withGrad, shapes);
  const userOutputs = withGrad.graph.outputs.filter((o) => o.name === 'loss' || o.name === 'logits');

  const gradient = cloneModel(withGrad);
  {
    const g = gradient.graph;
    g.outputs = [...userOutputs];
    for (const p of params) {
      // An embedding table larger than a batch's tokens whose only gradient is the scatter of its
      // looked-up rows (the word embeddings: 30,522 rows, at most 4,096 looked up by 32 × 128
      // tokens) hands out those rows and their indices instead of a table-sized tensor: the
      // caller adds them into its own table.
      const scatter = scatterOfZeros(g, gradients.get(p.name)!);
      if (scatter && p.shape.length === 2 && p.shape[0]! > ROWS_FORM_MIN_ROWS) {
        const [indices, updates] = [scatter.inputs[1]!, scatter.inputs[2]!];
        const indexShape = shapes.get(indices)?.shape;
        g.addNode({ opType: 'Identity', name: `/rows/${p.name}`, inputs: [updates], outputs: [gradRowsName(p.name)] });
        g.addNode({ opType: 'Identity', name: `/row_indices/${p.name}`, inputs: [indices], outputs: [gradRowIndicesName(p.name)] });
        g.outputs.push(
          { name: gradRowsName(p.name), elemType: DataType.FLOAT, shape: indexShape && [...indexShape.slice(0, -1), p.shape[1]!] },
          { name: gradRowIndicesName(p.name), elemType: DataType.INT64, shape: indexShape },
        );
        continue;
      }
      g.inputs.push(like(accumulatorName(p.name), p.shape));
      accumulate(g, accumulatorName(p.name), gradients.get(p.name)!, p.name, accumulatorUpdatedName(p.name));
      g.outputs.push(like(accumulatorUpdatedName(p.name), p.shape));
    }
    finish(g);
    keepDropouts(gradient);
  }

  const trainStep = cloneModel(withGrad);
  {
    const g = trainStep.graph;
    g.outputs = [...userOutputs];
    g.inputs.push(scalar(NATIVE_IO.lr), scalar(NATIVE_IO.step), scalar(NATIVE_IO.gradScale));
    const update = params.map((p) => {
      g.inputs.push(like(accumulatorName(p.name), p.shape));
      const total = accumulate(g, accumulatorName(p.name), gradients.get(p.name)!, p.name);
      // grad_scale is folded into the optimizer's scalars rather than multiplied into every gradient.
      return { name: p.name, grad: total, shape: p.shape, decay: p.decay, mask: p.mask ? Float32Array.from(p.mask) : undefined };
    });
    if (optimizer.name === 'adamw') {
      for (const p of params) {
        const s = stateNames(p.name, 'adamw');
        g.inputs.push(like(s.expAvg!, p.shape), like(s.expAvgSq!, p.shape));
      }
    }
    const states = appendOptimizerUpdate(g, update, optimizer, { lr: NATIVE_IO.lr, step: NATIVE_IO.step, gradScale: NATIVE_IO.gradScale });
    for (const [i, s] of states.entries()) {
      const shape = params[i]!.shape;
      g.outputs.push(like(s.updated, shape));
      if (s.expAvgUpdated) g.outputs.push(like(s.expAvgUpdated, shape), like(s.expAvgSqUpdated!, shape));
    }
    finish(g);
    keepDropouts(trainStep);
  }

  const evalOut = cloneModel(evalModel);
  evalOut.graph.outputs = evalOut.graph.outputs.filter((o) => o.name === 'loss' || o.name === 'logits');
  finish(evalOut.graph);
  return { trainStep, gradient, eval: evalOut, infer, dropoutMasks };
}

/**
 * accumulator + gradient. An embedding table's gradient is a ScatterND(reduction='add') of the
 * looked-up rows' gradients into a fresh table-sized zero tensor (see rules/gather.ts), possibly
 * summed with other contributions (a tied decoder's MatMul gradient); adding that to the
 * accumulator would zero-fill, copy and add the whole table again. Scattering straight into
 * accumulator (+ the other contributions) gives the same sums with one table-sized pass instead.
 */
function accumulate(g: Graph, acc: string, grad: string, param: string, output?: string): string {
  const outputs = output ? [output] : undefined;
  const name = `/accumulate/${param}`;
  const scatter = scatterOfZeros(g, grad);
  if (scatter) {
    return g.addNode({ opType: 'ScatterND', inputs: [acc, scatter.inputs[1]!, scatter.inputs[2]!], outputs, name, attrs: { reduction: A.string('add') } }).outputs[0]!;
  }
  const sum = g.producer(grad);
  if (sum && (sum.opType === 'Add' || sum.opType === 'Sum') && g.consumers(grad).length === 0 && !g.isGraphOutput(grad)) {
    const i = sum.inputs.findIndex((v) => scatterOfZeros(g, v) && g.consumers(v).length === 1);
    if (i >= 0) {
      const sc = scatterOfZeros(g, sum.inputs[i]!)!;
      const others = sum.inputs.filter((_, k) => k !== i);
      const base = g.addNode({ opType: others.length === 1 ? 'Add' : 'Sum', inputs: [acc, ...others], name: `${name}/others` }).outputs[0]!;
      return g.addNode({ opType: 'ScatterND', inputs: [base, sc.inputs[1]!, sc.inputs[2]!], outputs, name, attrs: { reduction: A.string('add') } }).outputs[0]!;
    }
  }
  return g.addNode({ opType: 'Add', inputs: [acc, grad], outputs, name }).outputs[0]!;
}

/** The ScatterND(reduction='add') node that produces `value` from a ConstantOfShape zero tensor, if so. */
function scatterOfZeros(g: Graph, value: string): Node | undefined {
  const n = g.producer(value);
  if (!n || n.opType !== 'ScatterND' || attrString(n, 'reduction', 'none') !== 'add') return undefined;
  const data = g.producer(n.inputs[0]!);
  if (!data || data.opType !== 'ConstantOfShape') return undefined;
  const fill = attrTensor(data, 'value');
  const zero = !fill || tensorNumbers(fill).every((v) => v === 0);
  return zero ? n : undefined;
}

function finish(g: Graph): void {
  g.removeDeadNodes();
  g.topologicalSort();
}

/**
 * Stock ONNX Runtime drops a Dropout whose mask output nobody reads, even in training mode; the
 * backward pass reads the masks of the Dropouts it differentiates through, the rest are rewritten
 * into standard ops so that they still drop.
 */
function keepDropouts(m: Model): void {
  lowerDropouts(m, { onlyUnusedMask: true });
  finish(m.graph);
}

const ROLE_BY_INPUT: Record<string, IoRole> = {
  input_ids: 'input_ids', attention_mask: 'attention_mask', token_type_ids: 'token_type_ids', labels: 'labels',
  masked_positions: 'masked_positions', hidden_states: 'hidden_states',
  [NATIVE_IO.lr]: 'learning_rate', [NATIVE_IO.step]: 'step', [NATIVE_IO.gradScale]: 'grad_scale',
  loss: 'loss', logits: 'logits',
};

/** Describe a model's inputs and outputs with their roles, for the manifest. */
export function describeModel(model: Model, file: string, paramNames: Set<string>, dropoutMasks: ReadonlyMap<string, number> = new Map()): ModelSpec {
  const spec = (v: ValueInfo): IoSpec => {
    const dtype = v.elemType === DataType.INT64 ? 'int64' : v.elemType === DataType.BOOL ? 'bool' : 'float32';
    const shape = (v.shape ?? []).map((d) => (d === null ? '?' : d));
    const ratio = dropoutMasks.get(v.name);
    if (ratio !== undefined) return { name: v.name, role: 'dropout_mask', dtype, shape, ratio };
    const base = ROLE_BY_INPUT[v.name];
    if (base) return { name: v.name, role: base, dtype, shape };
    for (const [suffix, role] of [
      ['.grad_accumulator.updated', 'grad_accumulator_updated'], ['.grad_accumulator', 'grad_accumulator'],
      ['.grad_rows', 'grad_rows'], ['.grad_row_indices', 'grad_row_indices'],
      ['.exp_avg_sq.updated', 'exp_avg_sq_updated'], ['.exp_avg.updated', 'exp_avg_updated'],
      ['.exp_avg_sq', 'exp_avg_sq'], ['.exp_avg', 'exp_avg'], ['.updated', 'parameter_updated'],
    ] as const) {
      if (v.name.endsWith(suffix) && paramNames.has(v.name.slice(0, -suffix.length))) {
        return { name: v.name, role, dtype, shape, parameter: v.name.slice(0, -suffix.length) };
      }
    }
    if (paramNames.has(v.name)) return { name: v.name, role: 'parameter', dtype, shape, parameter: v.name };
    throw new Error(`describeModel: input/output '${v.name}' of ${file} has no known role`);
  };
  return { file, inputs: model.graph.inputs.filter((i) => !model.graph.initializers.has(i.name)).map(spec), outputs: model.graph.outputs.map(spec) };
}
