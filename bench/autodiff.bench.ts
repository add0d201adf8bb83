/**
 * Backward-graph generation time on bert-base (LayerNorm-only and every parameter), and what the
 * backward graph costs in onnxruntime-node next to the forward pass alone on a smaller BERT.
 */
import * as ort from 'onnxruntime-node';
import { buildBackward } from '../src/autodiff/backward.js';
import { buildBert } from '../src/bert/build.js';
import { presetConfig } from '../src/bert/config.js';
import { DataType } from '../src/onnx/dtype.js';
import { Model, cloneModel } from '../src/onnx/graph.js';
import { encodeModel } from '../src/onnx/io.js';

function withLoss(model: Model): Model {
  const m = cloneModel(model);
  m.graph.inputs.push({ name: 'labels', elemType: DataType.INT64, shape: ['batch'] });
  m.graph.addNode({ opType: 'SoftmaxCrossEntropyLoss', inputs: ['logits', 'labels'], outputs: ['loss'] });
  m.graph.outputs = [{ name: 'loss', elemType: DataType.FLOAT, shape: [] }];
  return m;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

function selections(m: Model): Record<string, string[]> {
  const all = [...m.graph.initializers.values()].filter((t) => t.dataType === DataType.FLOAT && t.dims.length > 0).map((t) => t.name);
  return { layernorm: all.filter((n) => n.includes('LayerNorm')), all };
}

function timeBuild(model: Model, wrt: string[], reps: number): { ms: number; nodes: number } {
  const times: number[] = [];
  let nodes = 0;
  for (let i = 0; i < reps; i++) {
    const m = cloneModel(model);
    const t0 = performance.now();
    nodes = buildBackward(m.graph, { loss: 'loss', wrt }).nodes.length;
    times.push(performance.now() - t0);
  }
  return { ms: Math.round(median(times)), nodes };
}

async function sessionFor(model: Model, wrt: string[] | null): Promise<ort.InferenceSession> {
  const m = cloneModel(model);
  if (wrt) {
    const { gradients } = buildBackward(m.graph, { loss: 'loss', wrt });
    m.graph.outputs.push(...wrt.map((w) => ({ name: gradients.get(w)!, elemType: DataType.FLOAT })));
  }
  return ort.InferenceSession.create(encodeModel(m), { intraOpNumThreads: 2 });
}

/** Median run time of each session, the sessions taking turns so that load changes hit all alike. */
async function timeInterleaved(sessions: ort.InferenceSession[], feeds: Record<string, ort.Tensor>, reps: number): Promise<number[]> {
  for (const s of sessions) await s.run(feeds);
  const times = sessions.map(() => [] as number[]);
  for (let i = 0; i < reps; i++) {
    for (let k = 0; k < sessions.length; k++) {
      const t0 = performance.now();
      await sessions[k]!.run(feeds);
      times[k]!.push(performance.now() - t0);
    }
  }
  return times.map(median);
}

export async function run(): Promise<object> {
  const base = withLoss(buildBert({ config: presetConfig('bert-base'), numLabels: 2, init: 'zeros' }));
  const sel = selections(base);
  const generation = {
    model: 'bert-base (12 layers, 768 hidden), forward nodes: ' + base.graph.nodes.length,
    layernormOnly: timeBuild(base, sel.layernorm!, 5),
    allParameters: timeBuild(base, sel.all!, 5),
  };

  const cfg = presetConfig('bert-mini');
  const mini = withLoss(buildBert({ config: cfg, numLabels: 2, seed: 1 }));
  const batch = 8;
  const seq = 64;
  const ids = BigInt64Array.from({ length: batch * seq }, (_, i) => BigInt(1 + (i * 7919) % 1000));
  const feeds = {
    input_ids: new ort.Tensor('int64', ids, [batch, seq]),
    attention_mask: new ort.Tensor('int64', new BigInt64Array(batch * seq).fill(1n), [batch, seq]),
    token_type_ids: new ort.Tensor('int64', new BigInt64Array(batch * seq), [batch, seq]),
    labels: new ort.Tensor('int64', BigInt64Array.from({ length: batch }, (_, i) => BigInt(i % 2)), [batch]),
  };
  const miniSel = selections(mini);
  const [forward, lnStep, allStep] = await timeInterleaved(
    [await sessionFor(mini, null), await sessionFor(mini, miniSel.layernorm!), await sessionFor(mini, miniSel.all!)], feeds, 15) as [number, number, number];
  return {
    generation,
    onnxruntime: {
      model: `bert-mini (${cfg.numHiddenLayers} layers, ${cfg.hiddenSize} hidden), batch ${batch} × seq ${seq}, 2 threads, median ms`,
      forwardMs: Math.round(forward * 10) / 10,
      forwardBackwardLayerNormMs: Math.round(lnStep * 10) / 10,
      forwardBackwardAllMs: Math.round(allStep * 10) / 10,
      layerNormOverForward: Math.round((lnStep / forward) * 100) / 100,
      allOverForward: Math.round((allStep / forward) * 100) / 100,
    },
  };
}
