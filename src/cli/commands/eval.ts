import * as path from 'node:path';
import type { Command } from 'commander';
import { ModtuneError } from '../../errors.js';
import { evaluateRun } from '../../train/index.js';
import { metricsTable } from '../../train/report.js';
import { int } from './train.js';

interface EvalFlags {
  split?: string; checkpoint?: string; data?: string; limitEval?: number; out?: string; task?: string;
  tokenizer?: string; batchSize?: number; device?: string; threads?: number;
}

/** `modtune eval`: dev metrics of a run (or artifacts) folder, or a GLUE submission for its test split. */
export function register(program: Command): void {
  program
    .command('eval')
    .description('score a run folder (best/last/step N) or an artifacts folder on the dev split, or write GLUE submission files for the test split')
    .argument('<dir>', 'run folder or artifacts folder')
    .option('--split <name>', 'dev (metrics) or test (submission file) (default dev)')
    .option('--checkpoint <which>', 'best, last or a step number (default best, else last)')
    .option('--data <dir>', 'GLUE data folder (holding <Task>/)')
    .option('--limit-eval <n>', 'only the first n examples', int('--limit-eval'))
    .option('--out <file>', 'dev: write the metrics as JSON here; test: the submission file (or a folder)')
    .option('--task <name>', 'GLUE task, for artifacts folders that name none')
    .option('--tokenizer <file>', 'tokenizer.json or vocab.txt (default: the run\'s)')
    .option('--batch-size <n>', "examples per batch (default: the run's)", int('--batch-size'))
    .option('--device <name>', 'cpu or cuda (default cpu)')
    .option('--threads <n>', 'ONNX Runtime intra-op threads (default: all cores)', int('--threads'))
    .action(async (dir: string, flags: EvalFlags) => {
      const split = flags.split ?? 'dev';
      if (split !== 'dev' && split !== 'test') throw new ModtuneError(`--split must be dev or test, got '${split}'`);
      if (flags.device !== undefined && flags.device !== 'cpu' && flags.device !== 'cuda') throw new ModtuneError(`--device must be cpu or cuda, got '${flags.device}'`);
      const r = await evaluateRun({
        dir, split, checkpoint: flags.checkpoint, data: flags.data, limitEval: flags.limitEval, out: flags.out, task: flags.task,
        tokenizer: flags.tokenizer, batchSize: flags.batchSize, device: flags.device as 'cpu' | 'cuda' | undefined, threads: flags.threads,
        log: (line) => process.stderr.write(`${line}\n`),
      });
      const what = r.source.kind === 'run' ? `${r.source.checkpoint}${r.source.step !== null ? ` (step ${r.source.step})` : ''}` : 'initial parameters';
      const out = process.stdout;
      if (r.scores) {
        out.write(`${r.task} dev · ${what}\n\n`);
        out.write(`${metricsTable(r.scores.map((s) => ({ label: `${s.split} (${s.examples})`, metrics: s.metrics })))}\n`);
        if (flags.out) out.write(`\nmetrics written to ${path.resolve(flags.out)}\n`);
      } else {
        for (const f of r.files ?? []) out.write(`wrote ${f.file} (${f.rows} predictions, ${r.task} ${f.split}, ${what})\n`);
      }
    });
}
