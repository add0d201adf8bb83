/**
 * `results.jsonl`: one line per finished cell (done or failed), appended as cells finish; a cell run
 * again (a failed one on the next sweep) gets a new line, and the last line of a cell counts.
 * `results.csv` is written from it.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { writeAtomic } from '../onnx/io.js';
import { formatLr } from './grid.js';

export interface CellResult {
  id: string;
  task: string;
  selection: string;
  seed: number;
  lr: number;
  trainableCount: number;
  totalCount: number;
  /** The task's official dev metrics at the best evaluation (MNLI: `accuracy` and `dev_mismatched/accuracy`). */
  metrics: Record<string, number> | null;
  /** The task's main metric at the best evaluation (the one the best checkpoint was chosen by). */
  mainMetric: number | null;
  status: 'done' | 'failed';
  /** Why a failed cell failed. */
  error?: string;
  /** The cell's run folder, relative to the sweep folder. */
  run: string;
  steps: number | null;
  bestStep: number | null;
  wallSeconds: number;
  /** CPU time of the process that ran the cell (all its threads), while it ran: what the cell costs on an idle machine. */
  cpuSeconds?: number;
  /** Where it ran: `local` or the queue worker's name. */
  worker: string;
  finishedAt: string;
}

export const resultFiles = (dir: string) => ({
  jsonl: path.join(dir, 'results.jsonl'),
  csv: path.join(dir, 'results.csv'),
});

export function appendResult(dir: string, r: CellResult): void {
  fs.appendFileSync(resultFiles(dir).jsonl, `${JSON.stringify(r)}\n`);
}

/** The last record of each cell, in file order of first appearance. */
export function readResults(dir: string): Map<string, CellResult> {
  const file = resultFiles(dir).jsonl;
  const out = new Map<string, CellResult>();
  if (!fs.existsSync(file)) return out;
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    if (!line.trim()) continue;
    let r: CellResult;
    try {
      r = JSON.parse(line) as CellResult;
    } catch {
      continue; // a line cut short by a crash: that cell runs again
    }
    if (typeof r?.id === 'string' && (r.status === 'done' || r.status === 'failed')) out.set(r.id, r);
  }
  return out;
}

const CSV_COLUMNS = ['id', 'task', 'selection', 'seed', 'lr', 'trainableCount', 'totalCount', 'mainMetric', 'status', 'run', 'steps', 'bestStep', 'wallSeconds', 'cpuSeconds', 'worker', 'finishedAt', 'error'] as const;

/** results.csv: the fixed columns, then one column per metric name met in any cell. */
export function writeResultsCsv(dir: string, results: CellResult[]): void {
  const metricNames = [...new Set(results.flatMap((r) => Object.keys(r.metrics ?? {})))].sort();
  const header = [...CSV_COLUMNS, ...metricNames.map((m) => `metric:${m}`)];
  const rows = results.map((r) => [
    ...CSV_COLUMNS.map((c) => (c === 'lr' ? formatLr(r.lr) : r[c] ?? '')),
    ...metricNames.map((m) => r.metrics?.[m] ?? ''),
  ]);
  writeAtomic(resultFiles(dir).csv, [header, ...rows].map((row) => row.map(csvCell).join(',')).join('\n') + '\n');
}

function csvCell(v: unknown): string {
  const s = String(v);
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}
