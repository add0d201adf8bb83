import type { Command } from 'commander';
import { ModtuneError } from '../../errors.js';
import { parseLr, parseSeeds, parseSelections, splitList } from '../../sweep/grid.js';
import { sweep, sweepStatus, type SweepOptions } from '../../sweep/index.js';
import { maxGradNormFlag } from '../parse.js';
import { int, num } from './train.js';

interface SweepFlags {
  model?: string; grid?: string; preset?: string; tasks?: string; train?: string; seeds?: string; lr?: string;
  epochs?: number; maxSteps?: number; batchSize?: number; gradAccum?: number; groupByLength?: boolean; maxGradNorm?: number; lrSchedule?: 'linear' | 'constant'; warmupRatio?: number;
  weightDecay?: number; optimizer?: 'adamw' | 'sgd'; dropout?: number; maxLength?: number; evalEvery?: number; earlyStop?: number;
  limitTrain?: number; limitEval?: number; backend?: 'native' | 'ort-web'; newHead?: boolean; freezeHead?: boolean; cacheFrozen?: boolean; tokenizer?: string;
  data?: string; out?: string; workers?: number; threads?: number; resume?: boolean; force?: boolean;
  queue?: string; queueName?: string; queueTimeout?: number; detach?: boolean; status?: boolean; modelUrl?: string; tokenizerUrl?: string;
}

/** `modtune sweep`: the module × layer × task grid as train runs, with results, report and plots. */
export function register(program: Command): void {
  program
    .command('sweep')
    .description('train every cell of a grid (selections × tasks × seeds × learning rates), locally or on BullMQ workers, and write results, a report and plots')
    .option('--model <file>', 'base model (.onnx) (default: the embedded pretrained default)')
    .option('--grid <file>', 'grid.json with the same fields as these flags (flags override it)')
    .option('--preset <name>', 'paper (the whole experiment) or quick (a subset of about an hour for bert-mini on 2 cores)')
    .option('--tasks <list>', 'GLUE tasks, e.g. rte,mrpc,sst2')
    .option('--train <list>', "selections, e.g. 'layernorm,bias,full' (separate by spaces or ';' when a selection has commas)")
    .option('--seeds <n|list>', 'a seed count (42, 43, ...) or a list of seeds (default 1)')
    .option('--lr <list|auto|default>', 'learning rates, or auto (a grid per selection size, best on dev) or default (its middle rate) (default auto)')
    .option('--epochs <n>', 'epochs per cell (default 3)', int('--epochs'))
    .option('--max-steps <n>', 'optimizer updates per cell (overrides --epochs)', int('--max-steps'))
    .option('--batch-size <n>', 'examples per micro-batch (default 32)', int('--batch-size'))
    .option('--grad-accum <n>', 'micro-batches per update (default 1)', int('--grad-accum'))
    .option('--group-by-length', 'batch examples of similar length together (less padding)')
    .option('--lr-schedule <kind>', 'linear or constant (default linear)')
    .option('--warmup-ratio <x>', 'fraction of the updates spent warming up (default 0)', num('--warmup-ratio'))
    .option('--weight-decay <x>', 'decoupled weight decay (default 0.01)', num('--weight-decay'))
    .option('--max-grad-norm <x>', 'clip the global gradient norm to x (default 1.0; 0 or none: no clipping)', maxGradNormFlag)
    .option('--optimizer <name>', 'adamw or sgd (default adamw)')
    .option('--dropout <p>', "dropout everywhere (default: the model's config)", num('--dropout'))
    .option('--max-length <n>', 'tokens per example (default 128)', int('--max-length'))
    .option('--eval-every <n>', 'evaluate every n updates (default: each epoch)', int('--eval-every'))
    .option('--early-stop <n>', 'stop a cell after n evaluations without improvement', int('--early-stop'))
    .option('--limit-train <n>', 'train on the first n examples only', int('--limit-train'))
    .option('--limit-eval <n>', 'evaluate on the first n examples only', int('--limit-eval'))
    .option('--backend <name>', 'native or ort-web (default native)')
    .option('--new-head', "replace the model's classification head with a new one")
    .option('--freeze-head', 'do not train the classification head')
    .option('--cache-frozen', 'each cell runs its frozen layers below the first trained one once per example (train --cache-frozen)')
    .option('--tokenizer <file>', 'tokenizer.json or vocab.txt (default: beside the model)')
    .option('--data <dir>', 'GLUE data folder (holding <Task>/)')
    .option('--out <dir>', 'sweep folder (required)')
    .option('--workers <n>', 'local worker processes (default 1)', int('--workers'))
    .option('--threads <n>', 'ONNX Runtime threads per worker process (default: the cores divided among them)', int('--threads'))
    .option('--resume', "continue the sweep in --out with its own grid (flags may repeat it)")
    .option('--force', 'let --out take a different grid: cells still in it are kept, the others start over')
    .option('--queue <url>', 'distribute the cells over BullMQ workers through this Redis (redis://HOST:PORT)')
    .option('--queue-name <name>', 'BullMQ queue name (default modtune-sweep)')
    .option('--queue-timeout <s>', 'with --queue: stop waiting (exit 1) when Redis has not answered for s seconds (default 60)', num('--queue-timeout'))
    .option('--detach', 'with --queue: only enqueue the cells and exit')
    .option('--status', 'print what the sweep folder (and with --queue, the queue) holds, and exit')
    .option('--model-url <url>', 'with --queue: where workers fetch the base model (http URL or a path they can read; default the local path)')
    .option('--tokenizer-url <url>', 'with --queue: where workers fetch the tokenizer (default the local path)')
    .action(async (flags: SweepFlags) => {
      if (!flags.out) throw new ModtuneError('--out DIR is required (the sweep folder)');
      if (flags.status) {
        for (const line of await sweepStatus({ out: flags.out, queue: flags.queue, queueName: flags.queueName })) process.stdout.write(`${line}\n`);
        return;
      }
      if (flags.detach && !flags.queue) throw new ModtuneError('--detach only applies with --queue redis://HOST:PORT');
      const { tasks, train, seeds, lr, status: _s, queueTimeout, ...rest } = flags;
      if (queueTimeout !== undefined && !(queueTimeout > 0)) throw new ModtuneError(`--queue-timeout must be a positive number of seconds, got ${queueTimeout}`);
      const options: SweepOptions = {
        ...rest, out: flags.out, queueLostMs: queueTimeout === undefined ? undefined : queueTimeout * 1000,
        tasks: tasks === undefined ? undefined : splitList(tasks, '--tasks'),
        train: train === undefined ? undefined : parseSelections(train),
        seeds: seeds === undefined ? undefined : parseSeeds(seeds),
        lr: lr === undefined ? undefined : parseLr(lr),
      };
      await runSweep(options);
    });
}

async function runSweep(options: SweepOptions): Promise<void> {
  const err = process.stderr;
  const controller = new AbortController();
  let received: NodeJS.Signals | undefined;
  const onSignal = (sig: NodeJS.Signals) => {
    if (received) process.exit(sig === 'SIGTERM' ? 143 : 130);
    received = sig;
    err.write(`\nmodtune: ${sig}: stopping; running cells write a checkpoint and resume on the next run (press Ctrl-C again to quit at once)\n`);
    controller.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    const r = await sweep({ ...options, signal: controller.signal, log: (line) => err.write(`${line}\n`) });
    const out = process.stdout;
    out.write(`\n${r.dir}: ${r.total} cells, ${r.done} done, ${r.failed} failed, ${r.pending} not finished\n`);
    if (r.report) out.write(`report: ${r.report.markdown}\n        ${r.report.html}\n`);
    if (r.detached) out.write('cells enqueued; collect them by running the same command without --detach\n');
    if (r.interrupted) {
      out.write(`interrupted; run the same command again to continue\n`);
      process.exitCode = received === 'SIGTERM' ? 143 : 130;
    } else if (r.failed) {
      process.exitCode = 1;
    }
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
