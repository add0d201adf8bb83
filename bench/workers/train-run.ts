/**
 * Child process of the benchmarks: one whole `train` run (artifacts, data, every step and
 * evaluation), timed from the call to its end; prints wall time, peak RSS and the summary as JSON.
 *   node --import tsx bench/workers/train-run.ts '<TrainOptions as JSON>'
 */
import { train, type TrainOptions } from '../../src/train/index.js';

const options = JSON.parse(process.argv[2]!) as TrainOptions;
const lines: string[] = [];
const t0 = performance.now();
const s = await train({ ...options, log: (l) => lines.push(l) });
const wallSeconds = (performance.now() - t0) / 1000;
process.stdout.write(JSON.stringify({
  wallSeconds: +wallSeconds.toFixed(2), steps: s.steps, examplesPerSec: +s.examplesPerSec.toFixed(1), paddingShare: s.paddingShare,
  finalMetrics: s.finalMetrics, peakRssMB: Math.round(process.resourceUsage().maxRSS / 1024),
  cache: lines.find((l) => l.startsWith('--cache-frozen')) ?? null,
}) + '\n');
