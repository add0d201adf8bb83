import type { Command } from 'commander';
import { runDemo } from '../../demo/index.js';
import { formatCount, formatShare } from '../../modules/index.js';
import { int, num } from './train.js';
import type { TrainSummary } from '../../train/run-folder.js';
import { displayPath } from './artifacts.js';

interface DemoFlags { model?: string; tokenizer?: string; data?: string; train?: string; limitTrain?: number; epochs?: number; lr?: number; threads?: number; out?: string }

/** `modtune demo`: the README's first command. */
export function register(program: Command): void {
  program
    .command('demo')
    .description('tune the LayerNorms of the pretrained default model and, as the control, of the same shape from random init on SST-2 (about a minute on 2 cores), then compare on the dev set')
    .option('--model <file>', 'a model (.onnx) of yours instead of the pretrained default (no control run)')
    .option('--tokenizer <file>', 'tokenizer.json or vocab.txt (default: the one beside the model)')
    .option('--data <dir>', 'GLUE data folder')
    .option('--train <spec>', 'modules to train', 'layernorm')
    .option('--limit-train <n>', 'training examples (default 6000)', int('--limit-train'))
    .option('--epochs <n>', 'epochs (default 1)', int('--epochs'))
    .option('--lr <x>', 'peak learning rate (default: by the share trained, as train picks it: 1e-3 for layernorm)', num('--lr'))
    .option('--threads <n>', 'ONNX Runtime threads (default: all cores)', int('--threads'))
    .option('--out <dir>', 'run folder (default runs/demo-sst2-...)')
    .action(async (f: DemoFlags) => {
      const out = process.stdout;
      const controller = new AbortController();
      process.once('SIGINT', () => controller.abort());
      const r = await runDemo({ ...f, log: (l: string) => process.stderr.write(`${l}\n`), progress: process.stderr, signal: controller.signal });
      const first = r.runs[0]!.summary;
      const accuracy = (s: TrainSummary) => s.finalMetrics?.accuracy ?? s.bestMetrics?.accuracy;
      const cell = (v: number | undefined) => (v === undefined ? '-' : `${(v * 100).toFixed(2)}%`);
      out.write(`\nSST-2, ${first.selection} tuning: ${first.steps} updates (${first.epochs.toFixed(2)} epochs on a train subset), full dev set\n\n`);
      const header = ['', 'dev accuracy', 'trainable parameters', 'examples/s', 'time'];
      const rows = r.runs.map((run) => [
        run.label, cell(accuracy(run.summary)),
        `${formatCount(run.summary.trainableCount)} of ${formatCount(run.summary.totalCount)} (${formatShare(run.summary.trainableCount, run.summary.totalCount)})`,
        run.summary.examplesPerSec.toFixed(1), `${run.summary.wallSeconds.toFixed(0)} s`,
      ]);
      rows.push(['majority class', cell(r.majority), '-', '-', '-']);
      const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
      const line = (cells: string[]) => `  ${cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('   ')}`;
      out.write(`${[line(header), ...rows.map(line)].join('\n')}\n\n`);
      for (const run of r.runs) out.write(`  ${run.label}: ${displayPath(run.model)}; run folder ${displayPath(run.summary.runDir)}\n`);
    });
}
