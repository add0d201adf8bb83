import { describe, expect, it } from 'vitest';
import * as path from 'node:path';
import { discoverParameters } from '../../src/modules/discover.js';
import { selectParameters } from '../../src/modules/select.js';
import { unshareParameters } from '../../src/modules/unshare.js';
import { DataType } from '../../src/onnx/dtype.js';
import { cloneModel } from '../../src/onnx/graph.js';
import { encodeModel, loadModel } from '../../src/onnx/io.js';
import { makeTensor, tensorFloat32 } from '../../src/onnx/tensor.js';
import { TORCH113 } from '../helpers/paths.js';
import { torch113Logits } from './helpers.js';

const DEDUP = path.join(TORCH113, 'tiny_bert_torch113_dedup.onnx');

const bufferIds = new Map<ArrayBufferLike, number>();
const bufferId = (b: ArrayBufferLike) => bufferIds.get(b) ?? (bufferIds.set(b, bufferIds.size), bufferIds.size - 1);

describe('unshareParameters (torch dedup export)', () => {
  it('gives every selected LayerNorm its own initializer; the model computes the same logits', async () => {
    const model = loadModel(DEDUP);
    const before = await torch113Logits(encodeModel(model));
    const s = discoverParameters(model);
    const sel = selectParameters(s, 'layernorm', { freezeHead: true });
    expect(sel.parameters).toHaveLength(10);
    expect(sel.parameters.every((p) => p.sharedBy?.length === 4)).toBe(true);

    unshareParameters(model, sel.parameters);
    const g = model.graph;
    expect(g.nodes.some((n) => n.opType === 'Identity')).toBe(false);
    const tensors = sel.parameters.map((p) => g.initializers.get(p.name));
    expect(tensors.every((t) => t !== undefined)).toBe(true);
    // Distinct storage: no two selected parameters read the same bytes.
    const regions = new Set(tensors.map((t) => t!.raw).map((r) => `${bufferId(r.buffer)}:${r.byteOffset}`));
    expect(regions.size).toBe(10);
    expect(sel.parameters.every((p) => p.sharedBy === undefined)).toBe(true);
    // Each LayerNorm's Mul/Add now reads its own initializer.
    const mul = g.nodes.find((n) => n.name === '/bert/encoder/layer.1/output/LayerNorm/Mul')!;
    expect(mul.inputs).toContain('bert.encoder.layer.1.output.LayerNorm.weight');
    expect(g.initializers.has('bert.encoder.layer.1.output.LayerNorm.weight')).toBe(true);

    const again = discoverParameters(model);
    expect(again.parameters.map((p) => p.hfName)).toEqual(s.parameters.map((p) => p.hfName));
    expect(again.parameters.map((p) => p.name)).toEqual(s.parameters.map((p) => p.name));
    expect(again.parameters.some((p) => p.sharedBy)).toBe(false);

    const after = await torch113Logits(encodeModel(model));
    expect(after).toEqual(before);
    expect(after).toHaveLength(4);
  });

  it('unsharing some parameters leaves the rest shared, and the unshared ones really are independent', async () => {
    const model = loadModel(DEDUP);
    const original = await torch113Logits(encodeModel(cloneModel(model)));
    const s = discoverParameters(model);
    const sel = selectParameters(s, 'attention-layernorm@0', { freezeHead: true });
    expect(sel.parameters.map((p) => p.hfName)).toEqual([
      'bert.encoder.layer.0.attention.output.LayerNorm.weight', 'bert.encoder.layer.0.attention.output.LayerNorm.bias']);
    unshareParameters(model, sel.parameters);

    const again = discoverParameters(model);
    const shared = again.parameters.filter((p) => p.sharedBy).map((p) => p.hfName);
    expect(shared).toHaveLength(8);
    expect(shared).not.toContain('bert.encoder.layer.0.attention.output.LayerNorm.weight');
    expect(again.parameters.find((p) => p.hfName === 'bert.embeddings.LayerNorm.weight')!.sharedBy).toHaveLength(3);

    // Training the unshared weight in place (here: doubling its bytes) changes that LayerNorm only.
    const name = sel.parameters[0]!.name;
    const view = tensorFloat32(model.graph.initializers.get(name)!);
    expect(view.buffer).toBe(model.graph.initializers.get(name)!.raw.buffer);
    for (let i = 0; i < view.length; i++) view[i] = 2 * view[i]!;
    const emb = again.parameters.find((p) => p.hfName === 'bert.embeddings.LayerNorm.weight')!;
    expect(Array.from(again.values!(emb))).toEqual(new Array(32).fill(1));
    const changed = await torch113Logits(encodeModel(model));
    expect(changed).not.toEqual(original);
  });

  it('unsharing the stored tensor itself moves the other readers to a copy', async () => {
    const model = loadModel(DEDUP);
    const original = await torch113Logits(encodeModel(cloneModel(model)));
    const s = discoverParameters(model);
    const sel = selectParameters(s, 'embeddings-layernorm', { freezeHead: true });
    expect(sel.parameters.map((p) => p.name)).toEqual(['bert.embeddings.LayerNorm.weight', 'bert.embeddings.LayerNorm.bias']);
    unshareParameters(model, sel.parameters);
    expect(await torch113Logits(encodeModel(cloneModel(model)))).toEqual(original);

    const g = model.graph;
    for (const n of g.nodes.filter((x) => x.opType === 'Identity')) expect(n.inputs[0]).toMatch(/^bert\.embeddings\.LayerNorm\.(weight|bias)\.shared/);
    const again = discoverParameters(model);
    expect(again.parameters.find((p) => p.hfName === 'bert.embeddings.LayerNorm.weight')!.sharedBy).toBeUndefined();
    expect(again.parameters.find((p) => p.hfName === 'bert.encoder.layer.1.output.LayerNorm.weight')!.sharedBy).toHaveLength(3);

    g.initializers.set('bert.embeddings.LayerNorm.weight', makeTensor('bert.embeddings.LayerNorm.weight', DataType.FLOAT, [32], new Float32Array(32).fill(3)));
    const layerLn = again.parameters.find((p) => p.hfName === 'bert.encoder.layer.0.output.LayerNorm.weight')!;
    expect(Array.from(again.values!(layerLn))).toEqual(new Array(32).fill(1));
  });

  it('leaves parameters that share nothing alone', () => {
    const model = loadModel(DEDUP);
    const s = discoverParameters(model);
    const before = new Map(model.graph.initializers);
    const nodes = model.graph.nodes.length;
    unshareParameters(model, selectParameters(s, 'query').parameters);
    expect(model.graph.nodes.length).toBe(nodes);
    expect(new Map(model.graph.initializers)).toEqual(before);
  });
});
