import * as ort from 'onnxruntime-node';
import { encodeModel } from '../../src/onnx/io.js';
import type { Model } from '../../src/onnx/graph.js';
import { parseHfConfig, type BertConfig } from '../../src/bert/config.js';

/** A small config (Hugging Face config.json fields), overridable per test. */
export function tinyConfig(over: Record<string, unknown> = {}): BertConfig {
  return parseHfConfig({
    model_type: 'bert', vocab_size: 100, hidden_size: 16, num_hidden_layers: 2, num_attention_heads: 2,
    intermediate_size: 32, max_position_embeddings: 40, type_vocab_size: 2, layer_norm_eps: 1e-12, ...over,
  }, 'tiny-config.json');
}

export type Feeds = { input_ids: number[][]; attention_mask?: number[][]; token_type_ids?: number[][] };

/** Run a model in onnxruntime-node; mask defaults to ones, token types to zeros. */
export async function run(model: Model | Uint8Array, feeds: Feeds, extraOutputs: string[] = []): Promise<Record<string, ort.Tensor>> {
  let m = model;
  if (!(m instanceof Uint8Array) && extraOutputs.length) {
    m = { ...m, graph: m.graph.clone() };
    for (const name of extraOutputs) m.graph.outputs.push({ name, elemType: 1 });
  }
  const session = await ort.InferenceSession.create(m instanceof Uint8Array ? m : encodeModel(m));
  const b = feeds.input_ids.length;
  const s = feeds.input_ids[0]!.length;
  const t = (rows: number[][]) => new ort.Tensor('int64', BigInt64Array.from(rows.flat().map((v) => BigInt(v))), [b, s]);
  const ones = feeds.input_ids.map((r) => r.map(() => 1));
  const zeros = feeds.input_ids.map((r) => r.map(() => 0));
  const out = await session.run({
    input_ids: t(feeds.input_ids),
    attention_mask: t(feeds.attention_mask ?? ones),
    token_type_ids: t(feeds.token_type_ids ?? zeros),
  });
  await session.release();
  return out;
}

export const floats = (t: ort.Tensor | undefined) => Array.from(t!.data as Float32Array);

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}
