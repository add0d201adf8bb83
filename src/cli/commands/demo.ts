import type { Command } from 'commander';
import { runDemo } from '../../demo/index.js';
import { formatCount, formatShare } from '../../modules/index.js';
import { int, num } from './train.js';
import { displayPath } from './artifacts.js';

interface DemoFlags { model?: string; tokenizer?: string; data?: string; train?: string; limitTrain?: number; epochs?: number; lr?: number; threads?: number; out?: string }

/** `modtune demo`: the README's first command. */
export function register(program: Command): void {
  program
    .command('demo')
    .description('fine-tune the LayerNorms of the embedded default model on SST-2 (about 2 minutes), then evaluate on the dev set')
    .option('--model <file>', 'a real model (.onnx) instead of the embedded random one')
    .option('--tokenizer <file>', 'tokenizer.json or vocab.txt (default: beside the model, else ../shared)')
    .option('--data <dir>', 'GLUE data folder')
    .option('--train <spec>', 'modules to train', 'layernorm')
    .option('--limit-train <n>', 'training examples (default 6000)', int('--limit-train'))
    .option('--epochs <n>', 'epochs (default 1)', int('--epochs'))
    .option('--lr <x>', 'peak learning rate (default 1e-3)', num('--lr'))
    .option('--threads <n>', 'ONNX Runtime threads (default: all cores)', int('--threads'))
    .option('--out <dir>', 'run folder (default runs/demo-sst2-...)')
    .action(async (f: DemoFlags) => {
      const out = process.stdout;
      const controller = new AbortController();
      process.once('SIGINT', () => controller.abort());
      if (!f.model) {
        out.write('modtune demo: the embedded default model is bert-mini with RANDOM weights (no pretrained BERT ships with modtune),\n' +
          '  so dev accuracy stays near chance; pass --model (e.g. from `modtune pull <hub-id>`) to tune a real checkpoint.\n');
      }
      const r = await runDemo({ ...f, log: (l) => process.stderr.write(`${l}\n`), progress: process.stderr, signal: controller.signal });
      const s = r.summary;
      const acc = s.finalMetrics?.accuracy ?? s.bestMetrics?.accuracy;
      const rows: [string, string][] = [
        ['model', `${displayPath(r.model)}${r.randomModel ? ' (random weights)' : ''}`],
        ['task', 'SST-2 (train subset → full dev set)'],
        ['trained modules', s.selection],
        ['trainable parameters', `${formatCount(s.trainableCount)} of ${formatCount(s.totalCount)} (${formatShare(s.trainableCount, s.totalCount)})`],
        ['updates', `${s.steps} (${s.epochs.toFixed(2)} epochs)`],
        ['throughput', `${s.examplesPerSec.toFixed(1)} examples/s`],
        ['dev accuracy', acc === undefined ? '-' : `${(acc * 100).toFixed(2)}%`],
        ['wall time', `${s.wallSeconds.toFixed(0)} s`],
        ['run folder', displayPath(s.runDir)],
      ];
      const w = Math.max(...rows.map((x) => x[0].length));
      out.write(`\n${rows.map(([k, v]) => `  ${k.padEnd(w)}  ${v}`).join('\n')}\n`);
    });
}
