/**
 * Progress over the grid, one line per finished cell: cells done/total, failures, the ETA at the
 * pace of this session, and the best score so far per task.
 */
import { formatDuration } from '../util/progress.js';
import { formatLr } from './grid.js';
import type { CellResult } from './results.js';

export class GridProgress {
  private readonly start = performance.now();
  private finishedNow = 0;
  private readonly best = new Map<string, CellResult>();

  constructor(
    private readonly total: number,
    private done: number,
    private failed: number,
    private readonly log: (line: string) => void,
    earlier: Iterable<CellResult> = [],
  ) {
    for (const r of earlier) this.noteBest(r);
  }

  /** Seconds left at this session's pace; undefined before the first cell finishes. */
  eta(): number | undefined {
    if (!this.finishedNow) return undefined;
    const left = this.total - this.done - this.failed;
    return (((performance.now() - this.start) / 1000) * left) / this.finishedNow;
  }

  cell(r: CellResult, wasFailed = false): void {
    this.finishedNow++;
    if (r.status === 'done') {
      this.done++;
      if (wasFailed) this.failed--;
    } else if (!wasFailed) {
      this.failed++;
    }
    this.noteBest(r);
    const what = r.status === 'done'
      ? `${r.mainMetric === null ? 'no score' : r.mainMetric.toFixed(4)} in ${formatDuration(r.wallSeconds)}`
      : `FAILED: ${r.error}`;
    const eta = this.eta();
    const best = [...this.best.values()].map((b) => `${b.task} ${b.selection} ${b.mainMetric!.toFixed(4)}`).join(', ');
    this.log(`sweep: ${this.done + this.failed}/${this.total} cells${this.failed ? ` (${this.failed} failed)` : ''}` +
      `${eta !== undefined ? `, ETA ${formatDuration(eta)}` : ''} · ${r.task} ${r.selection} seed ${r.seed} lr ${formatLr(r.lr)}: ${what}` +
      `${best ? ` · best so far: ${best}` : ''}`);
  }

  private noteBest(r: CellResult): void {
    if (r.status !== 'done' || r.mainMetric === null || !Number.isFinite(r.mainMetric)) return;
    const b = this.best.get(r.task);
    if (!b || r.mainMetric > b.mainMetric!) this.best.set(r.task, r);
  }
}
