/**
 * "Pay only for what trains", counted in gradient.onnx: training the LayerNorms costs no
 * weight-gradient MatMul at all, and `full` costs exactly one more MatMul per Linear weight matrix.
 * The head is frozen in both, so the classifier's weight gradient does not blur the count.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { generateArtifacts } from '../../../src/artifacts/generate.js';
import type { Manifest } from '../../../src/artifacts/manifest.js';
import type { Graph, Node } from '../../../src/onnx/graph.js';
import { loadModel } from '../../../src/onnx/io.js';
import { tmpDir } from '../../helpers/paths.js';
import { writeBuilderTiny } from './drive.js';

/** A MatMul, also one that reads an operand transposed (FusedMatMul, src/artifacts/native/transposed-matmuls.ts). */
const isMatMul = (n: Node) => n.opType === 'MatMul' || n.opType === 'Gemm' || (n.opType === 'FusedMatMul' && n.domain === 'com.microsoft');
/** Ops that only move a gradient's entries around (layout), looked through to find what computed it. */
const LAYOUT = new Set(['Transpose', 'Reshape', 'Identity', 'Squeeze', 'Unsqueeze', 'Cast']);
const LINEAR_MODULES = new Set(['query', 'key', 'value', 'attention-output', 'intermediate', 'output', 'pooler', 'classifier']);

interface Built { m: Manifest; gradient: Graph; forward: Graph }
let work: string;
let layernorm: Built;
let full: Built;

beforeAll(() => {
  work = tmpDir('modtune-proof-cost-');
  const model = writeBuilderTiny(work);
  const build = (train: string): Built => {
    const out = path.join(work, train);
    const m = generateArtifacts({ model, train, out, numLabels: 3, freezeHead: true, dropout: 0, format: 'native' }).manifest;
    return { m, gradient: loadModel(path.join(out, m.native!.gradient.file)).graph, forward: loadModel(path.join(out, m.native!.eval.file)).graph };
  };
  layernorm = build('layernorm');
  full = build('full');
});
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

/** For each parameter: the op that computed its gradient (past the accumulator Add and layout ops). */
function gradientSources(b: Built): Map<string, Node> {
  const out = new Map<string, Node>();
  for (const io of b.m.native!.gradient.outputs.filter((o) => o.role === 'grad_accumulator_updated')) {
    const add = b.gradient.producer(io.name)!;
    // An embedding table's gradient rows are scattered (reduction add) straight into its accumulator.
    if (add.opType === 'ScatterND' && add.inputs[0] === `${io.parameter}.grad_accumulator` && add.attrs.reduction?.value === 'add') {
      out.set(io.parameter!, add);
      continue;
    }
    expect(add.opType).toBe('Add');
    let n = b.gradient.producer(add.inputs.find((i) => i !== `${io.parameter}.grad_accumulator`)!)!;
    while (n && LAYOUT.has(n.opType)) n = b.gradient.producer(n.inputs[0]!)!;
    out.set(io.parameter!, n);
  }
  return out;
}

describe('backward MatMuls in native/gradient.onnx', () => {
  it('the forward pass is the same in both, so every extra MatMul is backward work', () => {
    expect(layernorm.forward.nodes.filter(isMatMul).length).toBe(full.forward.nodes.filter(isMatMul).length);
    expect(layernorm.gradient.nodes.filter(isMatMul).length).toBeGreaterThan(layernorm.forward.nodes.filter(isMatMul).length);
  });

  it('full − layernorm = the number of Linear weight matrices full trains', () => {
    const linearWeights = full.m.parameters.filter((p) => p.role === 'weight' && LINEAR_MODULES.has(p.module));
    // 6 per encoder layer (q, k, v, attention output, intermediate, output) + the pooler; head frozen.
    expect(linearWeights).toHaveLength(6 * 2 + 1);
    const count = (b: Built) => b.gradient.nodes.filter(isMatMul).length;
    expect(count(full) - count(layernorm)).toBe(linearWeights.length);
  });

  it('in full, each Linear weight\'s gradient comes from its own MatMul; nothing else does', () => {
    const sources = gradientSources(full);
    const fromMatMul = [...sources].filter(([, n]) => isMatMul(n)).map(([p]) => p).sort();
    const linear = full.m.parameters.filter((p) => p.role === 'weight' && LINEAR_MODULES.has(p.module)).map((p) => p.name).sort();
    expect(fromMatMul).toEqual(linear);
    expect(new Set(fromMatMul.map((p) => sources.get(p))).size).toBe(linear.length);
  });

  it('in layernorm, no gradient comes from a MatMul: the backward MatMuls only carry data gradients', () => {
    const sources = gradientSources(layernorm);
    expect(sources.size).toBe(10);
    for (const [p, n] of sources) expect(isMatMul(n), `${p}: gradient computed by ${n.opType} '${n.name}'`).toBe(false);
    // What is left is exactly the data-gradient MatMuls: per layer one through each of the six
    // Linear layers and two through each of the two attention products (scores = QKᵀ, context =
    // PV), plus one each through the frozen classifier and pooler.
    const layers = layernorm.m.base.numLayers;
    const backward = (b: Built) => b.gradient.nodes.filter(isMatMul).length - b.forward.nodes.filter(isMatMul).length;
    expect(backward(layernorm)).toBe((6 + 2 * 2) * layers + 2);
    expect(backward(full)).toBe(backward(layernorm) + 6 * layers + 1);
  });
});
