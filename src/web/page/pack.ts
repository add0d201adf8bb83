/**
 * Encoded texts as a padded int64 batch (row-major [rows, seq], seq = the longest row): what both
 * page workers feed ONNX Runtime for input_ids, attention_mask and token_type_ids.
 */
export interface PackedBatch {
  rows: number;
  seq: number;
  ids: BigInt64Array;
  mask: BigInt64Array;
  types: BigInt64Array;
}

export function packRows(rows: ReadonlyArray<{ ids: number[]; types: number[] }>): PackedBatch {
  const n = rows.length;
  const seq = Math.max(...rows.map((r) => r.ids.length));
  const ids = new BigInt64Array(n * seq);
  const mask = new BigInt64Array(n * seq);
  const types = new BigInt64Array(n * seq);
  rows.forEach((r, i) => {
    for (let j = 0; j < r.ids.length; j++) {
      ids[i * seq + j] = BigInt(r.ids[j]!);
      mask[i * seq + j] = 1n;
      types[i * seq + j] = BigInt(r.types[j]!);
    }
  });
  return { rows: n, seq, ids, mask, types };
}
