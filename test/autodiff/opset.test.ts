import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { buildBackward } from '../../src/autodiff/backward.js';
import { upgradeOpset } from '../../src/autodiff/opset.js';
import { DataType } from '../../src/onnx/dtype.js';
import { Graph, Model, cloneModel, opsetVersion } from '../../src/onnx/graph.js';
import { encodeModel, loadModel, newModel } from '../../src/onnx/io.js';
import { FIXTURES } from '../helpers/paths.js';
import { ortTensor, random } from './harness.js';
import { float, int, ints, op, str } from './util.js';

async function runAll(m: Model, feeds: Record<string, ort.Tensor>): Promise<Record<string, number[]>> {
  const s = await ort.InferenceSession.create(encodeModel(m));
  const out = await s.run(feeds);
  return Object.fromEntries(Object.entries(out).map(([k, t]) => [k, Array.from(t.data as Float32Array, Number)]));
}

function expectClose(a: Record<string, number[]>, b: Record<string, number[]>): void {
  expect(Object.keys(b).sort()).toEqual(Object.keys(a).sort());
  for (const k of Object.keys(a)) {
    expect(b[k]!.length, k).toBe(a[k]!.length);
    a[k]!.forEach((v, i) => expect(b[k]![i], `${k}[${i}]`).toBeCloseTo(v, 5));
  }
}

/** A float input x[2,3,4] through ops whose form changed between `opset` and 17. */
function oldGraph(build: (g: Graph) => string[]): Graph {
  const g = new Graph();
  g.inputs.push({ name: 'x', elemType: DataType.FLOAT, shape: [2, 3, 4] });
  g.outputs = build(g).map((name) => ({ name, elemType: DataType.FLOAT }));
  return g;
}

const x = () => {
  const r = random(3);
  return { x: ortTensor('float32', Array.from({ length: 24 }, () => r.normal()), [2, 3, 4]) };
};

describe('upgradeOpset', () => {
  it('rewrites opset-11 attribute forms and keeps the old Softmax flattening meaning', async () => {
    const m = newModel(oldGraph((g) => {
      const [s1, s2] = g.addNode({ opType: 'Split', inputs: ['x'], outputs: 2, attrs: { axis: int(2), split: ints([1, 3]) } }).outputs;
      return [
        op(g, 'Softmax', ['x']), // default axis 1: softmax over the flattened [3·4] block
        op(g, 'LogSoftmax', ['x'], { axis: int(2) }),
        op(g, 'ReduceSum', ['x'], { axes: ints([1]), keepdims: int(0) }),
        op(g, 'ReduceMean', ['x'], { axes: ints([-1]) }),
        op(g, 'Unsqueeze', [op(g, 'Squeeze', [s1!], { axes: ints([2]) })], { axes: ints([0]) }),
        s2!,
        g.addNode({ opType: 'Dropout', inputs: ['x'], attrs: { ratio: float(0.4) } }).outputs[0]!,
      ];
    }), 11);
    const before = await runAll(m, x());
    const up = cloneModel(m);
    const report = upgradeOpset(up, 17);
    expect(opsetVersion(up)).toBe(17);
    expect(report).toMatchObject({ from: 11, to: 17 });
    expect(report.rewritten.join('\n')).toMatch(/Softmax.*Flatten/);
    expect(report.rewritten.join('\n')).toMatch(/LogSoftmax.*axis made explicit/);
    expect(report.rewritten.filter((r) => r.includes('attribute → input'))).toHaveLength(5);
    expectClose(before, await runAll(up, x()));
  });

  it('rewrites Slice (opset 9), Pad and Clip (opset 10) attributes into inputs', async () => {
    const m = newModel(oldGraph((g) => [
      op(g, 'Slice', ['x'], { starts: ints([1, 0]), ends: ints([3, -1]), axes: ints([1, 2]) }),
      op(g, 'Pad', ['x'], { pads: ints([0, 1, 0, 0, 0, 2]), value: float(0.5), mode: str('constant') }),
      op(g, 'Clip', ['x'], { min: float(-0.3), max: float(0.2) }),
    ]), 9);
    // Pad/Clip with attributes are opset 2-10; Slice with attributes opset 1-9: 9 has them all.
    const before = await runAll(m, x());
    for (const target of [12, 17]) {
      const up = cloneModel(m);
      up.irVersion = 4;
      upgradeOpset(up, target);
      expect(opsetVersion(up)).toBe(target);
      expect(up.graph.nodes.every((n) => !n.attrs.pads && !n.attrs.starts && !n.attrs.min)).toBe(true);
      expect(up.graph.nodes.some((n) => n.opType === 'CastLike')).toBe(false); // constants made in the data type
      expectClose(before, await runAll(up, x()));
    }
  });

  it('leaves a model at or above the target alone', () => {
    const m = newModel(oldGraph((g) => [op(g, 'Softmax', ['x'])]), 17);
    expect(upgradeOpset(m, 17).rewritten).toEqual([]);
    expect(m.graph.nodes[0]!.attrs.axis).toBeUndefined();
  });

  // [file, feeds, which parameters the fwd+bwd run differentiates (all are differentiated once
  // without running, to prove every op on their paths has a rule)]
  const fixtures: Array<[string, Record<string, ort.Tensor>, (name: string) => boolean]> = [
    ['optimum_tiny-distilbert-sst2.onnx', {
      input_ids: ortTensor('int64', [101, 7, 8, 102, 5, 9, 3, 102], [2, 4]),
      attention_mask: ortTensor('int64', [1, 1, 1, 1, 1, 1, 1, 0], [2, 4]),
    }, () => true],
    ['ort_bert_toy_optimized.onnx', {
      input_ids: ortTensor('int64', [1, 7, 8, 2, 5, 9, 3, 2], [2, 4]),
      token_type_ids: ortTensor('int64', [0, 0, 1, 1, 0, 0, 0, 1], [2, 4]),
      input_mask: ortTensor('int64', [1, 1, 1, 1, 1, 1, 1, 0], [2, 4]),
    }, () => true],
    // 24 layers: onnxruntime needs many seconds to load the full backward graph, so the run
    // differentiates the top layer only.
    ['ort_TFBertForQuestionAnswering_keras2onnx.onnx', {
      input_ids: ortTensor('int32', [1, 7, 8, 2, 5, 9, 3, 2, 1, 7, 8, 2, 5, 9], [2, 7]),
      token_type_ids: ortTensor('int32', new Array(14).fill(0), [2, 7]),
      attention_mask: ortTensor('int32', new Array(14).fill(1), [2, 7]),
    }, (n) => n.includes('layer_._23/')],
  ];
  for (const [file, feeds, runFor] of fixtures) {
    it(`${file}: same outputs after the upgrade to 17, and a backward graph for every float weight`, async () => {
      const m = loadModel(path.join(FIXTURES, file));
      const before = await runAll(m, feeds);
      const up = cloneModel(m);
      upgradeOpset(up, 17);
      expectClose(before, await runAll(up, feeds));

      // Loss = Σ of the first output.
      const g = up.graph;
      const loss = op(g, 'ReduceSum', [g.outputs[0]!.name], { keepdims: int(0) });
      const all = [...g.initializers.values()].filter((t) => t.dataType === DataType.FLOAT && t.dims.length > 0).map((t) => t.name);
      expect(buildBackward(cloneModel(up).graph, { loss, wrt: all }).gradients.size).toBe(all.length);

      const wrt = all.filter(runFor);
      expect(wrt.length).toBeGreaterThan(0);
      const { gradients } = buildBackward(g, { loss, wrt });
      g.outputs = [{ name: loss, elemType: DataType.FLOAT }, ...wrt.map((w) => ({ name: gradients.get(w)!, elemType: DataType.FLOAT }))];
      const out = await runAll(up, feeds);
      for (const w of wrt) expect(out[gradients.get(w)!]!.every(Number.isFinite), w).toBe(true);
      expect(wrt.some((w) => out[gradients.get(w)!]!.some((v) => v !== 0))).toBe(true);
    });
  }
});
