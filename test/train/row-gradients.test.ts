/**
 * Row gradients (src/train/backends/row-gradients.ts): an embedding table's gradient summed from
 * the looked-up rows, as ScatterND(reduction='add') into zeros defines it.
 */
import { describe, expect, it } from 'vitest';
import { RowGradient } from '../../src/train/backends/row-gradients.js';

describe('row gradients', () => {
  it('add each row into its table row, repeats summed, and clear back to zero', () => {
    const t = new RowGradient('table', 5, 2);
    t.add(Float32Array.from([1, 2, 3, 4, 5, 6]), BigInt64Array.from([3n, 0n, 3n]), 'model.onnx');
    expect(Array.from(t.sum)).toEqual([3, 4, 0, 0, 0, 0, 6, 8, 0, 0]);
    t.add(Float32Array.from([0.5, 0.5]), BigInt64Array.from([4n]), 'model.onnx');
    expect(Array.from(t.sum)).toEqual([3, 4, 0, 0, 0, 0, 6, 8, 0.5, 0.5]);
    t.clear();
    expect(Array.from(t.sum)).toEqual(new Array(10).fill(0));
    t.add(Float32Array.from([7, 7]), BigInt64Array.from([1n]), 'model.onnx');
    expect(Array.from(t.sum)).toEqual([0, 0, 7, 7, 0, 0, 0, 0, 0, 0]);
  });

  it('refuse an index outside the table and a row width that does not match, naming the file', () => {
    const t = new RowGradient('bert.embeddings.word_embeddings.weight', 5, 2);
    expect(() => t.add(Float32Array.from([1, 2]), BigInt64Array.from([5n]), 'gradient.onnx')).toThrow("gradient.onnx: row index 5 of 'bert.embeddings.word_embeddings.weight' is outside its 5 rows");
    expect(() => t.add(Float32Array.from([1, 2]), BigInt64Array.from([-1n]), 'gradient.onnx')).toThrow(/row index -1/);
    expect(() => t.add(Float32Array.from([1, 2, 3]), BigInt64Array.from([0n]), 'gradient.onnx')).toThrow("gradient.onnx: 1 row indices for 'bert.embeddings.word_embeddings.weight' but 3 gradient values; expected 2 per row");
  });
});
