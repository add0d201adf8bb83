import * as fs from 'node:fs';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { expect } from 'vitest';
import { buildBert } from '../../src/bert/build.js';
import { encodeModel } from '../../src/onnx/io.js';
import { readModelFolder } from '../../src/pretrain/model-folder.js';

interface Reference {
  input_ids: number[][];
  attention_mask: number[][];
  token_type_ids: number[][];
  positions: Array<{ row: number; position: number; first64: number[]; top: Array<{ id: number; logit: number }>; logsumexp: number }>;
}

/** Our builder's masked-LM logits for a model folder against the PyTorch reference beside it (scripts/torch_mlm_reference.py). */
export async function compareWithTorch(folder: string, tolerance: number): Promise<number> {
  const ref = JSON.parse(fs.readFileSync(path.join(folder, 'mlm-reference.json'), 'utf8')) as Reference;
  const { config, weights } = readModelFolder(folder);
  const [B, S] = [ref.input_ids.length, ref.input_ids[0]!.length];
  const ids = (rows: number[][]) => new ort.Tensor('int64', BigInt64Array.from(rows.flat(), BigInt), [B, S]);
  const feeds = { input_ids: ids(ref.input_ids), attention_mask: ids(ref.attention_mask), token_type_ids: ids(ref.token_type_ids) };
  let worst = 0;
  const check = (row: Float32Array, r: Reference['positions'][number]) => {
    r.first64.forEach((v, j) => (worst = Math.max(worst, Math.abs(row[j]! - v))));
    r.top.forEach((t) => (worst = Math.max(worst, Math.abs(row[t.id]! - t.logit))));
    let max = -Infinity;
    for (const v of row) max = Math.max(max, v);
    let sum = 0;
    for (const v of row) sum += Math.exp(v - max);
    worst = Math.max(worst, Math.abs(max + Math.log(sum) - r.logsumexp));
    expect(Array.from(row).map((v, i) => [v, i]).sort((a, b) => b[0]! - a[0]!)[0]![1]).toBe(r.top[0]!.id);
  };

  // Every position ('all'), then only the gathered positions ('masked', as pre-training runs it).
  const all = await ort.InferenceSession.create(encodeModel(buildBert({ config, weights, mlmHead: 'all', pooler: false })));
  const logits = (await all.run(feeds)).logits!.data as Float32Array;
  const V = config.vocabSize;
  for (const r of ref.positions) check(logits.subarray((r.row * S + r.position) * V, (r.row * S + r.position + 1) * V), r);
  await all.release();

  const masked = await ort.InferenceSession.create(encodeModel(buildBert({ config, weights, mlmHead: 'masked', pooler: false })));
  const positions = BigInt64Array.from(ref.positions, (r) => BigInt(r.row * S + r.position));
  const gathered = (await masked.run({ ...feeds, masked_positions: new ort.Tensor('int64', positions, [positions.length]) })).logits!.data as Float32Array;
  ref.positions.forEach((r, i) => check(gathered.subarray(i * V, (i + 1) * V), r));
  await masked.release();
  expect(worst).toBeLessThan(tolerance);
  return worst;
}

