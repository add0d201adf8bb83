/**
 * Dropouts as mask inputs (src/artifacts/native/dropout-inputs.ts): the rewritten graph computes
 * what ONNX's Dropout defines for the mask it is given — forward and, through the autodiff, backward
 * — run by ONNX Runtime; Dropouts it cannot size, or that are the identity, stay as they are.
 */
import { describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { buildBackward } from '../../src/autodiff/index.js';
import { DROPOUT_MASK_SUFFIX, dropoutsToMaskInputs, recastMasksForBackward } from '../../src/artifacts/native/dropout-inputs.js';
import { DataType } from '../../src/onnx/dtype.js';
import { Graph, type Dim } from '../../src/onnx/graph.js';
import { decodeModel, encodeModel, newModel } from '../../src/onnx/io.js';
import { makeTensor, scalarF32 } from '../../src/onnx/tensor.js';

/** x [batch, 3] → Dropout(ratio, training_mode) → y; loss = Σ y · w (w a fixed weight, so dL/dy = w). */
function dropoutGraph(ratio: number, training: boolean, shape: Dim[] = ['batch', 3]): Graph {
  const g = new Graph();
  g.inputs.push({ name: 'x', elemType: DataType.FLOAT, shape });
  g.initializers.set('ratio', scalarF32('ratio', ratio));
  g.initializers.set('mode', makeTensor('mode', DataType.BOOL, [], new Uint8Array([training ? 1 : 0])));
  g.initializers.set('w', makeTensor('w', DataType.FLOAT, [3], [0.5, -2, 3]));
  g.addNode({ opType: 'Dropout', name: '/dropout/site', inputs: ['x', 'ratio', 'mode'], outputs: ['y', 'kept'] });
  const yw = g.addNode({ opType: 'Mul', inputs: ['y', 'w'] }).outputs[0]!;
  g.addNode({ opType: 'ReduceSum', inputs: [yw], outputs: ['loss'], attrs: { keepdims: { type: 'int', value: 0 } } });
  g.outputs.push({ name: 'loss', elemType: DataType.FLOAT, shape: [] }, { name: 'y', elemType: DataType.FLOAT, shape }, { name: 'kept', elemType: DataType.BOOL, shape });
  return g;
}

describe('dropout masks as graph inputs', () => {
  it('y = x · mask / (1 − ratio), the mask output is the input, and dL/dx = dL/dy · mask / (1 − ratio)', async () => {
    const model = newModel(dropoutGraph(0.25, true), 17);
    const ratios = dropoutsToMaskInputs(model);
    const mask = `/dropout/site${DROPOUT_MASK_SUFFIX}`;
    expect([...ratios]).toEqual([[mask, 0.25]]);
    expect(model.graph.nodes.map((n) => n.opType)).not.toContain('Dropout');
    expect(model.graph.inputs.find((i) => i.name === mask)).toEqual({ name: mask, elemType: DataType.BOOL, shape: ['batch', 3] });
    const forward = new Set(model.graph.nodes);
    const { gradients } = buildBackward(model.graph, { loss: 'loss', wrt: ['x'] });
    recastMasksForBackward(model, ratios, forward);
    model.graph.outputs.push({ name: gradients.get('x')!, elemType: DataType.FLOAT, shape: ['batch', 3] });

    const x = Float32Array.from([1, 2, 3, -4, 5, -6]);
    const keep = Uint8Array.from([1, 0, 1, 1, 1, 0]);
    const s = await ort.InferenceSession.create(encodeModel(model));
    const out = await s.run({ x: new ort.Tensor('float32', x, [2, 3]), [mask]: new ort.Tensor('bool', keep, [2, 3]) });
    const scale = Math.fround(1 / 0.75);
    // ONNX's Dropout: output = data · mask · scale (a dropped negative value is −0, as there).
    expect(Array.from(out.y!.data as Float32Array)).toEqual(Array.from(x, (v, i) => Math.fround(v * keep[i]! * scale)));
    expect(Object.is((out.y!.data as Float32Array)[5], -0)).toBe(true);
    expect(Array.from(out.kept!.data as Uint8Array)).toEqual(Array.from(keep));
    const w = [0.5, -2, 3];
    expect(Array.from(out[gradients.get('x')!]!.data as Float32Array)).toEqual(Array.from(keep, (k, i) => Math.fround(w[i % 3]! * k * scale)));
    await s.release();
  });

  it('the backward casts the mask on its own, and ONNX Runtime keeps the two casts apart', async () => {
    const model = newModel(dropoutGraph(0.25, true), 17);
    const ratios = dropoutsToMaskInputs(model);
    const mask = [...ratios.keys()][0]!;
    const forward = new Set(model.graph.nodes);
    const { gradients } = buildBackward(model.graph, { loss: 'loss', wrt: ['x'] });
    model.graph.outputs.push({ name: gradients.get('x')!, elemType: DataType.FLOAT, shape: ['batch', 3] });
    const castsOfMask = (m: typeof model) => m.graph.nodes.filter((n) => n.opType === 'Cast' && n.inputs[0] === mask).length;
    expect(castsOfMask(model)).toBe(1);
    recastMasksForBackward(model, ratios, forward);
    // The forward Mul reads one cast, the backward's Mul another (through uint8).
    const forwardCast = model.graph.nodes.find((n) => n.name === '/dropout/site/Cast')!;
    expect(model.graph.consumers(forwardCast.outputs[0]!).map((n) => n.name)).toEqual(['/dropout/site/Mul']);
    expect(castsOfMask(model)).toBe(2);
    // What ONNX Runtime runs after its own optimisations: still two casts of the mask, so the
    // forward's float mask is freed once the forward Mul has read it.
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'modtune-recast-'));
    try {
      const optimized = path.join(dir, 'optimized.onnx');
      const s = await ort.InferenceSession.create(encodeModel(model), { graphOptimizationLevel: 'all', optimizedModelFilePath: optimized });
      await s.release();
      const ran = decodeModel(new Uint8Array(fs.readFileSync(optimized)));
      const casts = ran.graph.nodes.filter((n) => n.opType === 'Cast');
      expect(casts.length).toBe(2);
      expect(casts.map((n) => n.outputs[0]).every((o) => ran.graph.consumers(o!).length === 1)).toBe(true);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('leaves the identity Dropouts (ratio 0, inference mode) and those it cannot size', () => {
    for (const [ratio, training, shape] of [[0, true, ['batch', 3]], [0.1, false, ['batch', 3]], [0.1, true, ['batch', 'tokens']]] as const) {
      const model = newModel(dropoutGraph(ratio, training, [...shape]), 17);
      expect(dropoutsToMaskInputs(model).size).toBe(0);
      expect(model.graph.nodes.map((n) => n.opType)).toContain('Dropout');
    }
  });
});
