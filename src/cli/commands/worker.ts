import type { Command } from 'commander';
import { runWorker } from '../../sweep/index.js';
import { int } from './train.js';

interface WorkerFlags {
  queue: string; queueName?: string; model?: string; data?: string; threads?: number; workDir?: string; concurrency?: number;
  lockDuration?: number; stalledInterval?: number; maxStalledCount?: number; name?: string;
}

/** `modtune worker`: train sweep cells taken from a BullMQ queue until stopped. */
export function register(program: Command): void {
  program
    .command('worker')
    .description('take sweep cells from a BullMQ queue (put there by `modtune sweep --queue`) and train them until stopped')
    .requiredOption('--queue <url>', 'the Redis of the sweep (redis://HOST:PORT)')
    .option('--queue-name <name>', 'BullMQ queue name (default modtune-sweep)')
    .option('--model <file>', "this worker's copy of the base model (jobs for another sha256 are refused); default: fetch the one each job names")
    .option('--data <dir>', 'GLUE data folder (holding <Task>/)')
    .option('--threads <n>', 'ONNX Runtime intra-op threads (default: all cores)', int('--threads'))
    .option('--work-dir <dir>', 'downloads and runs in progress (default ~/.cache/modtune/worker)')
    .option('--concurrency <n>', 'cells at once (default 1)', int('--concurrency'))
    .option('--lock-duration <ms>', "BullMQ job lock: a dead worker's cell is taken again after about this long (default 30000)", int('--lock-duration'))
    .option('--stalled-interval <ms>', 'how often to look for cells of dead workers (default 30000)', int('--stalled-interval'))
    .option('--max-stalled-count <n>', 'times a cell may be taken back from a dead worker before it fails (default 3)', int('--max-stalled-count'))
    .option('--name <name>', 'name shown in the sweep results (default host:pid)')
    .action(async (flags: WorkerFlags) => {
      const controller = new AbortController();
      const onSignal = (sig: NodeJS.Signals) => {
        if (controller.signal.aborted) process.exit(sig === 'SIGTERM' ? 143 : 130);
        process.stderr.write(`\nmodtune worker: ${sig}: finishing the current cell, then stopping (again to quit at once; the cell goes back to the queue)\n`);
        controller.abort();
      };
      process.on('SIGINT', onSignal);
      process.on('SIGTERM', onSignal);
      try {
        const r = await runWorker({ ...flags, signal: controller.signal, log: (line) => process.stderr.write(`${line}\n`) });
        process.stdout.write(`worker stopped: ${r.processed} cells done, ${r.failed} failed\n`);
      } finally {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
      }
    });
}
