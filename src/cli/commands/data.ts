import type { Command } from 'commander';
import { pullGlueTask } from '../../data/glue-download.js';
import { createProgress } from '../../util/progress.js';

/** `modtune data pull TASK`: fetch a GLUE task into the cache, where every command finds it. */
export function register(program: Command): void {
  const data = program.command('data').description('GLUE data: download and inspect');
  data
    .command('pull')
    .description('download a GLUE task (CoLA, SST-2, MRPC, STS-B, QQP, MNLI, QNLI, RTE, WNLI) into the cache')
    .argument('<task>', 'GLUE task name, e.g. sst2, MRPC, sts-b')
    .option('--cache <dir>', 'cache folder (default $MODTUNE_CACHE or ~/.cache/modtune); data goes to <dir>/glue/<Task>/')
    .option('--force', 'download again even if the task is already there')
    .action(async (taskName: string, opts: { cache?: string; force?: boolean }) => {
      let bar: ReturnType<typeof createProgress> | undefined;
      let current = '';
      const result = await pullGlueTask(taskName, {
        cacheDir: opts.cache,
        force: opts.force,
        onFile: (file) => {
          bar?.done();
          bar = undefined;
          current = file;
        },
        onProgress: (p) => {
          bar ??= createProgress({ total: p.total, label: current, unit: 'bytes' });
          bar.update(p.done);
        },
      });
      bar?.done();
      if (result.alreadyPresent) {
        process.stdout.write(`${result.task.name}: already in ${result.taskDir} (--force downloads it again)\n`);
      } else {
        process.stdout.write(`${result.task.name}: downloaded to ${result.taskDir}\n`);
      }
    });
}
