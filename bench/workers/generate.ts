/**
 * Child process of the benchmarks: generates artifacts once and prints time and peak RSS as JSON.
 *   node --import tsx bench/workers/generate.ts <model.onnx> <spec> <out-dir> <format>
 */
import { generateArtifacts } from '../../src/artifacts/generate.js';

const [model, spec, out, format] = process.argv.slice(2);
const baseRss = process.memoryUsage().rss;
const t0 = performance.now();
const r = generateArtifacts({ model: model!, train: spec!, out: out!, task: 'sst2', format: (format ?? 'native') as 'native', force: true, totalSteps: 1000 });
const ms = performance.now() - t0;
process.stdout.write(JSON.stringify({
  spec, format, generateMs: Math.round(ms), trainableCount: r.manifest.selection.trainableCount, totalCount: r.manifest.selection.totalCount,
  peakRssMB: Math.round(process.resourceUsage().maxRSS / 1024), baseRssMB: Math.round(baseRss / 2 ** 20),
}) + '\n');
