/**
 * Progress reporting for long operations (downloads, training). On a terminal: one line redrawn in
 * place (bar, percent, rate, ETA, extra fields). Anywhere else (CI logs, files, pipes): plain lines,
 * at most one every few seconds, plus a final one, so logs stay readable.
 */

/** What progress needs of a stream; `process.stderr` and `process.stdout` fit. */
export interface ProgressStream {
  write(chunk: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

export interface ProgressOptions {
  /** Expected final value of `done`; without it there is no bar, percent or ETA. */
  total?: number;
  label: string;
  /** Default: process.stderr (stdout stays free for results). */
  stream?: ProgressStream | NodeJS.WriteStream;
  unit?: 'bytes' | 'steps';
  /** Minimum time between plain log lines (non-TTY). Default 5000 ms. */
  logIntervalMs?: number;
  /** Minimum time between redraws on a TTY. Default 100 ms. */
  redrawIntervalMs?: number;
  /** Clock in milliseconds (tests). Default: performance.now. */
  now?: () => number;
}

export interface Progress {
  update(done: number, extra?: Record<string, string | number>): void;
  done(message?: string): void;
}

/** Rate is measured over this recent window, so the ETA follows speed changes. */
const RATE_WINDOW_MS = 10_000;
const BAR_WIDTH = 24;

export function createProgress(opts: ProgressOptions): Progress {
  const stream: ProgressStream = opts.stream ?? process.stderr;
  const tty = !!stream.isTTY;
  const now = opts.now ?? (() => performance.now());
  const unit = opts.unit ?? 'steps';
  const logInterval = opts.logIntervalMs ?? 5000;
  const redrawInterval = opts.redrawIntervalMs ?? 100;
  const start = now();
  const samples: Array<{ t: number; done: number }> = [];
  let current = 0;
  let extra: Record<string, string | number> = {};
  let lastWrite = tty ? -Infinity : start;
  let finished = false;

  const rate = (): number | undefined => {
    if (samples.length < 2) return undefined;
    const first = samples[0]!;
    const last = samples[samples.length - 1]!;
    const dt = (last.t - first.t) / 1000;
    return dt > 0 ? (last.done - first.done) / dt : undefined;
  };

  const state = (): ProgressState => ({ label: opts.label, done: current, total: opts.total, unit, rate: rate(), elapsedMs: now() - start, extra });

  const write = (line: string, final: boolean) => {
    if (tty) {
      // Some pseudo-terminals report 0 columns.
      const width = Math.max(20, (stream.columns || 80) - 1);
      // Carriage return + erase-to-end redraws the same line; the final draw ends it.
      stream.write(`\r${line.length > width ? line.slice(0, width) : line}\x1b[K${final ? '\n' : ''}`);
    } else {
      stream.write(`${line}\n`);
    }
  };

  return {
    update(done: number, more?: Record<string, string | number>) {
      if (finished) return;
      const t = now();
      current = done;
      if (more) extra = { ...extra, ...more };
      samples.push({ t, done });
      while (samples.length > 2 && t - samples[0]!.t > RATE_WINDOW_MS) samples.shift();
      if (t - lastWrite < (tty ? redrawInterval : logInterval)) return;
      lastWrite = t;
      write(tty ? formatTtyLine(state()) : formatLogLine(state()), false);
    },
    done(message?: string) {
      if (finished) return;
      finished = true;
      write(formatDoneLine(state(), message), true);
    },
  };
}

// ---- formatting (exported for tests and for callers that print their own summaries) -----------

export interface ProgressState {
  label: string;
  done: number;
  total?: number;
  unit: 'bytes' | 'steps';
  /** Units per second, when measurable. */
  rate?: number;
  elapsedMs: number;
  extra: Record<string, string | number>;
}

/** 1536 → "1.5 KiB"; binary units, three significant digits. */
export function formatBytes(n: number): string {
  if (!Number.isFinite(n)) return '? B';
  if (Math.abs(n) < 1024) return `${Math.round(n)} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = -1;
  while (Math.abs(v) >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2)} ${units[i]}`;
}

/** Seconds → "42s", "3m05s", "2h07m"; "?" when not finite. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '?';
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  const m = Math.floor(s / 60);
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}

/** Rate in the unit's terms: "3.2 MiB/s", "12.5 steps/s", or "4.0 s/step" when slower than one per second. */
export function formatRate(perSecond: number | undefined, unit: 'bytes' | 'steps'): string {
  if (perSecond === undefined || !Number.isFinite(perSecond) || perSecond < 0) return '';
  if (unit === 'bytes') return `${formatBytes(perSecond)}/s`;
  if (perSecond === 0) return '0 steps/s';
  if (perSecond < 1) return `${(1 / perSecond).toFixed(1)} s/step`;
  return `${perSecond >= 100 ? perSecond.toFixed(0) : perSecond.toFixed(1)} steps/s`;
}

/** Seconds left at the current rate, when total and rate are known. */
export function etaSeconds(s: Pick<ProgressState, 'done' | 'total' | 'rate'>): number | undefined {
  if (s.total === undefined || !s.rate || s.rate <= 0) return undefined;
  return Math.max(0, (s.total - s.done) / s.rate);
}

function formatAmount(s: ProgressState): string {
  const f = (n: number) => (s.unit === 'bytes' ? formatBytes(n) : String(n));
  return s.total !== undefined ? `${f(s.done)}/${f(s.total)}` : f(s.done);
}

function formatExtra(extra: Record<string, string | number>): string {
  return Object.entries(extra)
    .map(([k, v]) => `${k}=${typeof v === 'number' && !Number.isInteger(v) ? Number(v.toPrecision(4)) : v}`)
    .join(' ');
}

function percent(s: ProgressState): number | undefined {
  if (s.total === undefined) return undefined;
  if (s.total <= 0) return 100;
  return Math.min(100, Math.max(0, (s.done / s.total) * 100));
}

function join(parts: Array<string | undefined>): string {
  return parts.filter((p) => p).join(' ');
}

/** "label [#######-----]  45% 12.0 MiB/26.7 MiB 3.2 MiB/s ETA 5s loss=0.6931" */
export function formatTtyLine(s: ProgressState): string {
  const p = percent(s);
  let bar: string | undefined;
  if (p !== undefined) {
    const filled = Math.round((p / 100) * BAR_WIDTH);
    bar = `[${'#'.repeat(filled)}${'-'.repeat(BAR_WIDTH - filled)}] ${p.toFixed(0).padStart(3)}%`;
  }
  const eta = etaSeconds(s);
  return join([s.label, bar, formatAmount(s), formatRate(s.rate, s.unit), eta !== undefined ? `ETA ${formatDuration(eta)}` : undefined, formatExtra(s.extra)]);
}

/** "label: 45% 12.0 MiB/26.7 MiB 3.2 MiB/s ETA 5s loss=0.6931" */
export function formatLogLine(s: ProgressState): string {
  const p = percent(s);
  const eta = etaSeconds(s);
  return join([`${s.label}:`, p !== undefined ? `${p.toFixed(0)}%` : undefined, formatAmount(s), formatRate(s.rate, s.unit), eta !== undefined ? `ETA ${formatDuration(eta)}` : undefined, formatExtra(s.extra)]);
}

/** "label: done, 26.7 MiB in 8s (3.3 MiB/s) loss=0.5 message" */
export function formatDoneLine(s: ProgressState, message?: string): string {
  const secs = s.elapsedMs / 1000;
  const avg = secs > 0 ? s.done / secs : undefined;
  const amount = s.unit === 'bytes' ? formatBytes(s.done) : `${s.done} steps`;
  const rate = formatRate(avg, s.unit);
  return join([`${s.label}: done, ${amount} in ${formatDuration(secs)}${rate ? ` (${rate})` : ''}`, formatExtra(s.extra), message]);
}
