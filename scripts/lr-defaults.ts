/**
 * The measurement behind the default learning rates (src/artifacts/default-lr.ts): short SST-2 runs
 * of small selections at several rates, side by side, one JSON line per run.
 *
 *   node --import tsx scripts/lr-defaults.ts [--preset bert-tiny] [--steps 120] [--train layernorm,bias] [--lrs 2e-5,1e-4,1e-3,3e-3]
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { buildBert, presetConfig } from '../src/bert/index.js';
import { bundledUncasedVocab, copyTokenizerBeside } from '../src/data/paths.js';
import { saveModel } from '../src/onnx/io.js';
import { readMetrics, train } from '../src/train/index.js';

const { values } = parseArgs({
  options: {
    preset: { type: 'string', default: 'bert-tiny' },
    steps: { type: 'string', default: '120' },
    train: { type: 'string', default: 'layernorm,bias' },
    lrs: { type: 'string', default: '2e-5,1e-4,1e-3,3e-3' },
    data: { type: 'string' },
  },
});
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'modtune-lr-'));
try {
  const model = path.join(dir, `${values.preset}.onnx`);
  saveModel(buildBert({ config: presetConfig(values.preset!), numLabels: 2, seed: 0 }), model);
  copyTokenizerBeside(bundledUncasedVocab(), model);
  for (const spec of values.train!.split(',')) {
    for (const lr of values.lrs!.split(',').map(Number)) {
      const out = path.join(dir, `run-${spec}-${lr}`);
      const t0 = Date.now();
      const summary = await train({ model, train: spec, task: 'sst2', lr, maxSteps: Number(values.steps), batchSize: 32, dropout: 0, limitEval: 872, seed: 42, data: values.data, out });
      const losses = readMetrics(out).filter((r) => r.type === 'train').map((r) => (r as { loss: number }).loss);
      const first = losses.slice(0, 5);
      const last = losses.slice(-5);
      const mean = (a: number[]) => a.reduce((s, v) => s + v, 0) / Math.max(1, a.length);
      process.stdout.write(`${JSON.stringify({ preset: values.preset, train: spec, lr, steps: Number(values.steps), lossFirst5: +mean(first).toFixed(4), lossLast5: +mean(last).toFixed(4), dev: summary.finalMetrics, best: summary.bestMetrics, seconds: Math.round((Date.now() - t0) / 1000) })}\n`);
    }
  }
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}
