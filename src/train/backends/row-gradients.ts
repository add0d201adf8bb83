/**
 * An embedding table's gradient summed from the rows a gradient model hands out (roles `grad_rows`
 * and `grad_row_indices`, see src/artifacts/native/build.ts) instead of a table-sized tensor: a
 * batch of 32 × 128 tokens touches at most 4,096 of the word embeddings' 30,522 rows, and the
 * table-sized gradient cost a zero fill, a scatter and a copy out of ONNX Runtime every step.
 */
import { ModtuneError } from '../../errors.js';

export class RowGradient {
  /** The summed gradient, table-sized; zero outside the rows added since the last clear(). */
  readonly sum: Float32Array;
  private readonly touched: Uint8Array;
  private readonly touchedRows: number[] = [];

  constructor(readonly name: string, readonly rows: number, readonly width: number) {
    this.sum = new Float32Array(rows * width);
    this.touched = new Uint8Array(rows);
  }

  /** Add each row gradient into its row (a row named twice gets both). */
  add(grads: Float32Array, indices: BigInt64Array, label: string): void {
    if (grads.length !== indices.length * this.width) {
      throw new ModtuneError(`${label}: ${indices.length} row indices for '${this.name}' but ${grads.length} gradient values; expected ${this.width} per row`);
    }
    const { sum, width } = this;
    for (let r = 0; r < indices.length; r++) {
      const row = Number(indices[r]!);
      if (!(row >= 0 && row < this.rows)) throw new ModtuneError(`${label}: row index ${row} of '${this.name}' is outside its ${this.rows} rows`);
      if (!this.touched[row]) {
        this.touched[row] = 1;
        this.touchedRows.push(row);
      }
      const to = row * width, from = r * width;
      for (let c = 0; c < width; c++) sum[to + c] = sum[to + c]! + grads[from + c]!;
    }
  }

  /** Back to zero: only the rows touched are cleared. */
  clear(): void {
    for (const row of this.touchedRows) {
      this.sum.fill(0, row * this.width, (row + 1) * this.width);
      this.touched[row] = 0;
    }
    this.touchedRows.length = 0;
  }
}
