import * as fs from 'node:fs';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import type { ParameterInfo } from '../../src/modules/types.js';
import { TORCH113 } from '../helpers/paths.js';

/** The Hugging Face parameter names of a BERT-style model, written out from the architecture. */
export function bertHfNames(opts: { prefix?: string; layers: number; tokenTypes?: boolean; pooler?: boolean; classifier?: boolean }): string[] {
  const p = opts.prefix ?? 'bert';
  const names = [`${p}.embeddings.word_embeddings.weight`, `${p}.embeddings.position_embeddings.weight`];
  if (opts.tokenTypes !== false) names.push(`${p}.embeddings.token_type_embeddings.weight`);
  names.push(`${p}.embeddings.LayerNorm.weight`, `${p}.embeddings.LayerNorm.bias`);
  for (let l = 0; l < opts.layers; l++) {
    for (const m of ['attention.self.query', 'attention.self.key', 'attention.self.value', 'attention.output.dense',
      'attention.output.LayerNorm', 'intermediate.dense', 'output.dense', 'output.LayerNorm']) {
      names.push(`${p}.encoder.layer.${l}.${m}.weight`, `${p}.encoder.layer.${l}.${m}.bias`);
    }
  }
  if (opts.pooler) names.push(`${p}.pooler.dense.weight`, `${p}.pooler.dense.bias`);
  if (opts.classifier) names.push('classifier.weight', 'classifier.bias');
  return names;
}

/** A parameter's values in the Hugging Face layout. */
export function hfLayout(p: ParameterInfo, stored: Float32Array): Float32Array {
  if (!p.transposed) return stored;
  const [rows, cols] = p.shape as [number, number];
  const out = new Float32Array(stored.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = stored[r * cols + c]!;
  return out;
}

export const torch113Expected = JSON.parse(fs.readFileSync(path.join(TORCH113, 'tiny_bert_torch113.expected.json'), 'utf8')) as {
  input_ids: number[][]; attention_mask: number[][]; token_type_ids: number[][]; expected_logits: number[][];
};

/** Logits of a torch113-style model on the fixture's inputs. */
export async function torch113Logits(bytes: Uint8Array): Promise<number[]> {
  const s = await ort.InferenceSession.create(bytes);
  const e = torch113Expected;
  const feed = (rows: number[][]) => new ort.Tensor('int64', BigInt64Array.from(rows.flat().map(BigInt)), [rows.length, rows[0]!.length]);
  const out = await s.run({ input_ids: feed(e.input_ids), attention_mask: feed(e.attention_mask), token_type_ids: feed(e.token_type_ids) });
  const logits = Array.from(out.logits!.data as Float32Array);
  await s.release();
  return logits;
}
