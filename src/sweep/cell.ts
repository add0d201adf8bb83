/**
 * One cell of a sweep: an ordinary `train` run into its own run folder, then its delta exported
 * beside it (`<run>/delta/`). A cell whose folder holds a finished run is not trained again; one
 * whose folder holds an unfinished run (a crash, a kill) resumes it. A failure becomes a result
 * with the error, so the sweep goes on.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ModtuneError } from '../errors.js';
import { exportDelta } from '../export/export.js';
import { train, TrainInterrupted } from '../train/loop.js';
import { isRunFolder, readBestRecord, readSummary, type TrainSummary } from '../train/run-folder.js';
import type { Cell, SharedOptions } from './grid.js';
import type { CellResult } from './results.js';

export interface CellJob {
  cell: Cell;
  settings: SharedOptions;
  model: string;
  tokenizer?: string;
  /** Absolute run folder of the cell. */
  runDir: string;
  data?: string;
  threads?: number;
  cacheDir?: string | false;
  /** The selection's size as counted before the sweep started (kept in a failed cell's record). */
  trainableCount: number;
  totalCount: number;
}

export const deltaDir = (runDir: string) => path.join(runDir, 'delta');

export async function runCell(job: CellJob, opts: { signal?: AbortSignal; log?: (line: string) => void; worker?: string } = {}): Promise<CellResult> {
  const { cell, runDir } = job;
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  const cpuSeconds = () => {
    const d = process.cpuUsage(cpu0);
    return (d.user + d.system) / 1e6;
  };
  const base = {
    id: cell.id, task: cell.task, selection: cell.selection, seed: cell.seed, lr: cell.lr,
    run: runDir, worker: opts.worker ?? 'local',
  };
  try {
    let summary = readSummary(runDir);
    if (!summary) {
      const resume = isRunFolder(runDir);
      summary = await train({
        ...(resume ? {} : {
          ...job.settings, model: job.model, tokenizer: job.tokenizer, train: cell.selection, task: cell.task, seed: cell.seed, lr: cell.lr,
          // The folder is the sweep's own: whatever a crash left there without a run config goes.
          force: true,
        }),
        resume, out: runDir, data: job.data, threads: job.threads, cacheDir: job.cacheDir, signal: opts.signal, log: opts.log,
      });
    }
    if (!fs.existsSync(path.join(deltaDir(runDir), 'delta.json'))) exportDelta({ run: runDir, out: deltaDir(runDir), force: true });
    return { ...finishedResult(base, summary, runDir), cpuSeconds: cpuSeconds() };
  } catch (e) {
    if (e instanceof TrainInterrupted) throw e;
    const message = e instanceof ModtuneError ? e.message : `internal error: ${(e as Error)?.message ?? String(e)}`;
    return {
      ...base, trainableCount: job.trainableCount, totalCount: job.totalCount, metrics: null, mainMetric: null,
      status: 'failed', error: message, steps: null, bestStep: null,
      wallSeconds: (performance.now() - t0) / 1000, cpuSeconds: cpuSeconds(), finishedAt: new Date().toISOString(),
    };
  }
}

/** The result record of a finished run folder. */
export function finishedResult(base: Pick<CellResult, 'id' | 'task' | 'selection' | 'seed' | 'lr' | 'run' | 'worker'>, summary: TrainSummary, runDir: string): CellResult {
  const best = readBestRecord(runDir);
  return {
    ...base, trainableCount: summary.trainableCount, totalCount: summary.totalCount,
    metrics: best?.metrics ?? summary.bestMetrics, mainMetric: best?.main ?? null,
    status: 'done', steps: summary.steps, bestStep: summary.bestStep, wallSeconds: summary.wallSeconds,
    finishedAt: new Date().toISOString(),
  };
}
