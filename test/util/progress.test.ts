import { describe, expect, it } from 'vitest';
import {
  createProgress, etaSeconds, formatBytes, formatDoneLine, formatDuration, formatLogLine, formatRate, formatTtyLine,
} from '../../src/util/progress.js';

/** A stream that records writes, and a clock the test moves by hand. */
function fakeStream(isTTY: boolean, columns = 100) {
  const writes: string[] = [];
  return { writes, stream: { isTTY, columns, write: (s: string) => { writes.push(s); return true; } } };
}
function fakeClock() {
  let t = 1000;
  return { now: () => t, advance: (ms: number) => { t += ms; } };
}

describe('progress formatting', () => {
  it('formats bytes in binary units with three significant digits', () => {
    expect(formatBytes(0)).toBe('0 B');
    expect(formatBytes(1023)).toBe('1023 B');
    expect(formatBytes(1536)).toBe('1.50 KiB');
    expect(formatBytes(10 * 1024 * 1024 + 512 * 1024)).toBe('10.5 MiB');
    expect(formatBytes(440 * 1024 ** 2)).toBe('440 MiB');
    expect(formatBytes(1.25 * 1024 ** 3)).toBe('1.25 GiB');
  });

  it('formats durations', () => {
    expect(formatDuration(0)).toBe('0s');
    expect(formatDuration(42.4)).toBe('42s');
    expect(formatDuration(185)).toBe('3m05s');
    expect(formatDuration(2 * 3600 + 7 * 60 + 30)).toBe('2h07m');
    expect(formatDuration(Infinity)).toBe('?');
  });

  it('formats rates for bytes and steps, slow steps as seconds per step', () => {
    expect(formatRate(3.2 * 1024 ** 2, 'bytes')).toBe('3.20 MiB/s');
    expect(formatRate(12.34, 'steps')).toBe('12.3 steps/s');
    expect(formatRate(250, 'steps')).toBe('250 steps/s');
    expect(formatRate(0.25, 'steps')).toBe('4.0 s/step');
    expect(formatRate(undefined, 'steps')).toBe('');
  });

  it('computes the ETA from the remaining amount and the rate', () => {
    expect(etaSeconds({ done: 25, total: 100, rate: 5 })).toBe(15);
    expect(etaSeconds({ done: 25, total: undefined, rate: 5 })).toBeUndefined();
    expect(etaSeconds({ done: 25, total: 100, rate: 0 })).toBeUndefined();
    expect(etaSeconds({ done: 120, total: 100, rate: 5 })).toBe(0);
  });

  it('builds TTY, log and final lines', () => {
    const s = { label: 'model.safetensors', done: 12 * 1024 ** 2, total: 48 * 1024 ** 2, unit: 'bytes' as const, rate: 4 * 1024 ** 2, elapsedMs: 3000, extra: {} };
    expect(formatTtyLine(s)).toBe('model.safetensors [######------------------]  25% 12.0 MiB/48.0 MiB 4.00 MiB/s ETA 9s');
    expect(formatLogLine(s)).toBe('model.safetensors: 25% 12.0 MiB/48.0 MiB 4.00 MiB/s ETA 9s');
    const t = { label: 'train', done: 30, total: 200, unit: 'steps' as const, rate: 2, elapsedMs: 15000, extra: { loss: 0.693147, lr: 2e-5, epoch: 1 } };
    expect(formatLogLine(t)).toBe('train: 15% 30/200 2.0 steps/s ETA 1m25s loss=0.6931 lr=0.00002 epoch=1');
    expect(formatDoneLine({ ...t, done: 200, elapsedMs: 100_000 }, 'saved')).toBe('train: done, 200 steps in 1m40s (2.0 steps/s) loss=0.6931 lr=0.00002 epoch=1 saved');
    // Unknown total: no bar, percent or ETA.
    expect(formatTtyLine({ ...s, total: undefined })).toBe('model.safetensors 12.0 MiB 4.00 MiB/s');
  });
});

describe('createProgress', () => {
  it('on a TTY redraws one line in place, throttled, and ends it with a newline', () => {
    const { writes, stream } = fakeStream(true);
    const clock = fakeClock();
    const p = createProgress({ label: 'dl', total: 1000, unit: 'bytes', stream, now: clock.now, redrawIntervalMs: 100 });
    p.update(0);
    clock.advance(50);
    p.update(100); // within 100 ms of the last draw: no redraw
    clock.advance(950);
    p.update(500);
    expect(writes.length).toBe(2);
    for (const w of writes) {
      expect(w.startsWith('\r')).toBe(true);
      expect(w.endsWith('\x1b[K')).toBe(true);
    }
    // 500 bytes in 1 s → 500 B/s, 500 left → 1 s.
    expect(writes[1]).toBe('\rdl [############------------]  50% 500 B/1000 B 500 B/s ETA 1s\x1b[K');
    clock.advance(1000);
    p.update(1000);
    p.done();
    expect(writes[writes.length - 1]).toBe('\rdl: done, 1000 B in 2s (500 B/s)\x1b[K\n');
    p.update(5); // ignored after done
    p.done();
    expect(writes.filter((w) => w.includes('done')).length).toBe(1);
  });

  it('truncates the TTY line to the terminal width', () => {
    const { writes, stream } = fakeStream(true, 30);
    const p = createProgress({ label: 'a-rather-long-label-for-a-narrow-terminal', total: 10, stream, now: fakeClock().now });
    p.update(1);
    expect(writes[0]).toBe(`\r${'a-rather-long-label-for-a-narrow-terminal'.slice(0, 29)}\x1b[K`);
  });

  it('elsewhere writes plain lines at most every logIntervalMs, then a final line', () => {
    const { writes, stream } = fakeStream(false);
    const clock = fakeClock();
    const p = createProgress({ label: 'train', total: 100, unit: 'steps', stream, now: clock.now, logIntervalMs: 5000 });
    for (let step = 1; step <= 100; step++) {
      clock.advance(200); // 5 steps/s
      p.update(step, { loss: 1 / step });
    }
    p.done('checkpoint saved');
    // 20 s of updates at one line per 5 s → 4 progress lines + the final one; no control characters.
    expect(writes.length).toBe(5);
    expect(writes.every((w) => w.endsWith('\n') && !w.includes('\r') && !w.includes('\x1b'))).toBe(true);
    expect(writes[0]).toBe('train: 25% 25/100 5.0 steps/s ETA 15s loss=0.04\n');
    expect(writes[4]).toBe('train: done, 100 steps in 20s (5.0 steps/s) loss=0.01 checkpoint saved\n');
  });

  it('measures the rate over a recent window so the ETA follows speed changes', () => {
    const { writes, stream } = fakeStream(false);
    const clock = fakeClock();
    const p = createProgress({ label: 'x', total: 10_000, stream, now: clock.now, logIntervalMs: 60_000 });
    // 30 s slow (10/s), then 30 s fast (100/s).
    for (let i = 1; i <= 30; i++) { clock.advance(1000); p.update(i * 10); }
    for (let i = 1; i <= 30; i++) { clock.advance(1000); p.update(300 + i * 100); }
    expect(writes[0]).toMatch(/^x: 33% 3300\/10000 100 steps\/s ETA 1m07s\n$/);
  });
});
