import type { Command } from 'commander';
import { plotRun } from '../../sweep/index.js';

/** `modtune plot`: a training run's loss and metric curves as SVG (and the Vega-Lite spec). */
export function register(program: Command): void {
  program
    .command('plot')
    .description("draw a run's training loss and dev metrics by step (metrics.jsonl) as SVG, with its Vega-Lite spec")
    .argument('<run>', 'run folder (of modtune train, or a sweep cell: SWEEP/runs/CELL)')
    .option('--out <dir>', 'folder for curves.svg and curves.vl.json (default: the run folder)')
    .action(async (run: string, flags: { out?: string }) => {
      const r = await plotRun({ run, out: flags.out });
      process.stdout.write(`wrote ${r.svg} (${r.points} records) and ${r.spec}\n`);
    });
}
