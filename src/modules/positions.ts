/**
 * The longest sequence a model can take: its position-embedding table's rows (Hugging Face's
 * `max_position_embeddings`), less RoBERTa's offset (its positions start after the padding id, 1).
 * A longer `--max-length` would index past the table, which ONNX Runtime reports only when the
 * first long batch runs, in its own words.
 */
import { ModtuneError } from '../errors.js';
import type { ModelStructure } from './types.js';

export function maxSequenceLength(structure: ModelStructure): number | undefined {
  const table = structure.parameters.find((p) => p.hfName.endsWith('embeddings.position_embeddings.weight'));
  const rows = table?.hfShape[0];
  if (rows === undefined) return undefined;
  return structure.family === 'roberta' ? rows - 2 : rows;
}

/** Refuse a maximum length the model's position table cannot serve. */
export function checkMaxLength(maxLength: number, maxPositions: number | undefined, what: string, model: string): void {
  if (maxPositions !== undefined && maxLength > maxPositions) {
    throw new ModtuneError(`${what} ${maxLength} is longer than ${model} can take: its position embeddings cover ${maxPositions} tokens (max_position_embeddings); use at most ${maxPositions}`);
  }
}
