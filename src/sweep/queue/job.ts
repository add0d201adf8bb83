/**
 * What travels through the queue. A job names the base model by sha256 and where a worker can
 * fetch it, the task by name (each worker reads its own GLUE data), and carries the cell and the
 * shared options; the worker returns the cell's result and the small files of its run folder, the
 * delta among them, so no filesystem needs to be shared.
 */
import type { Cell, SharedOptions } from '../grid.js';
import type { CellResult } from '../results.js';

export const JOB_FORMAT = 'modtune-sweep-cell';

export interface FileRef {
  sha256: string;
  /** A path the worker can read or an http(s) URL. */
  source: string;
  /** File name to keep (the tokenizer's kind is told by its name: tokenizer.json or vocab.txt). */
  name: string;
}

export interface CellJobData {
  format: typeof JOB_FORMAT;
  modtuneVersion: string;
  settingsHash: string;
  cell: Cell;
  settings: SharedOptions;
  base: FileRef;
  tokenizer: FileRef;
  trainableCount: number;
  totalCount: number;
}

export interface CellJobReturn {
  result: CellResult;
  /** Run-folder files, relative path → base64 of the bytes. */
  files: Record<string, string>;
  /** Files left out, with why (a delta above the transfer limit). */
  omitted: Record<string, string>;
}

/** Deltas above this are not sent back through Redis (a `full` delta is the whole model). */
export const MAX_TRANSFER_BYTES = 64 << 20;

/** The run-folder files a worker sends back. */
export const RETURNED_FILES = ['config.json', 'metrics.jsonl', 'summary.json', 'best/metrics.json', 'delta/delta.json', 'delta/delta.safetensors'];

/** One id per cell and settings: adding it again is a no-op, and two sweeps of the same settings share results. */
export function jobId(settingsHash: string, cellId: string): string {
  return `${settingsHash.slice(0, 16)}-${cellId}`;
}
