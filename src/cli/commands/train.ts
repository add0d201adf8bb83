import type { Command } from 'commander';
import { ModtuneError } from '../../errors.js';
import { formatDuration } from '../../util/progress.js';
import { train, TrainInterrupted, type TrainOptions } from '../../train/index.js';
import { metricsTable } from '../../train/report.js';
import { maxGradNormFlag } from '../parse.js';
import { runStoppable } from '../stoppable.js';
import { defaultModel } from '../../bert/default-model.js';

interface TrainFlags {
  train?: string; artifacts?: string; task?: string; epochs?: number; maxSteps?: number; batchSize?: number;
  gradAccum?: number; lr?: number; lrSchedule?: 'linear' | 'constant'; warmupRatio?: number; weightDecay?: number;
  maxGradNorm?: number; groupByLength?: boolean; optimizer?: 'adamw' | 'sgd'; dropout?: number; maxLength?: number; seed?: number; evalEvery?: number; earlyStop?: number;
  saveEvery?: number; limitTrain?: number; limitEval?: number; backend?: 'native' | 'ort-web'; device?: 'cpu' | 'cuda';
  threads?: number; tokenizer?: string; data?: string; out?: string; resume?: boolean; newHead?: boolean;
  freezeHead?: boolean; force?: boolean; cacheFrozen?: boolean; cacheBudget?: number;
}

/** Number flags keep `undefined` when absent, so a resume can tell given options from defaults. */
export const int = (flag: string) => (v: string): number => {
  if (!/^\s*\d+\s*$/.test(v)) throw new ModtuneError(`${flag} must be a positive integer, got '${v}'`);
  return Number(v);
};
export const num = (flag: string) => (v: string): number => {
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n)) throw new ModtuneError(`${flag} must be a number, got '${v}'`);
  return n;
};

/** `modtune train`: fine-tune the selected modules on a GLUE task, into a run folder. */
export function register(program: Command): void {
  program
    .command('train')
    .description('fine-tune the selected modules of a model (or an artifacts folder) on a GLUE task, writing a run folder')
    .argument('[model]', 'base model (.onnx) to build artifacts from (default: the embedded pretrained default; or use --artifacts)')
    .option('--train <spec>', 'modules to train, e.g. layernorm, attention@0-5, bias (with a model)')
    .option('--artifacts <dir>', 'train an artifacts folder built by `modtune artifacts`')
    .option('--task <name>', 'GLUE task: CoLA, SST-2, MRPC, STS-B, QQP, MNLI, QNLI, RTE, WNLI')
    .option('--epochs <n>', 'epochs (default 3)', int('--epochs'))
    .option('--max-steps <n>', 'optimizer updates in total (overrides --epochs)', int('--max-steps'))
    .option('--batch-size <n>', 'examples per micro-batch (default 32)', int('--batch-size'))
    .option('--grad-accum <n>', 'micro-batches per update (default 1)', int('--grad-accum'))
    .option('--group-by-length', 'batch examples of similar length together (less padding), in a seeded random batch order')
    .option('--lr <x>', 'peak learning rate (default: by the selection, 2e-5 for full fine-tuning to 1e-3 for LayerNorms, biases, the classifier)', num('--lr'))
    .option('--lr-schedule <kind>', 'linear (warmup, then decay to 0) or constant (default linear)')
    .option('--warmup-ratio <x>', 'fraction of the updates spent warming up (default 0)', num('--warmup-ratio'))
    .option('--weight-decay <x>', 'AdamW/SGD decoupled weight decay (default 0.01)', num('--weight-decay'))
    .option('--max-grad-norm <x>', 'clip the global gradient norm to x before each update (default 1.0; 0 or none: no clipping)', maxGradNormFlag)
    .option('--optimizer <name>', 'adamw or sgd (default adamw)')
    .option('--dropout <p>', "dropout everywhere (default: the model's config)", num('--dropout'))
    .option('--max-length <n>', 'tokens per example (default 128)', int('--max-length'))
    .option('--seed <n>', 'seed of the data order and of a new head (default 42)', int('--seed'))
    .option('--eval-every <n>', 'evaluate every n updates (default: each epoch)', int('--eval-every'))
    .option('--early-stop <n>', 'stop after n evaluations without improvement', int('--early-stop'))
    .option('--save-every <n>', 'checkpoint every n updates (default: at each evaluation)', int('--save-every'))
    .option('--limit-train <n>', 'train on the first n examples only', int('--limit-train'))
    .option('--limit-eval <n>', 'evaluate on the first n examples only', int('--limit-eval'))
    .option('--backend <name>', 'native (onnxruntime-node) or ort-web (default native)')
    .option('--device <name>', 'cpu or cuda (default cpu)')
    .option('--threads <n>', 'ONNX Runtime intra-op threads (default: all cores)', int('--threads'))
    .option('--tokenizer <file>', 'tokenizer.json or vocab.txt (default: the one the artifacts name)')
    .option('--data <dir>', 'GLUE data folder (holding <Task>/)')
    .option('--out <dir>', 'run folder (default runs/<task>-<spec>-<timestamp>)')
    .option('--resume', 'continue the run in --out from its latest checkpoint')
    .option('--new-head', "replace the model's classification head with a new one")
    .option('--freeze-head', 'do not train the classification head')
    .option('--force', 'replace an existing run folder (only a run folder, never one holding the model, tokenizer or data)')
    .option('--cache-frozen', 'run the frozen layers below the first trained layer once per example, keep their output in memory, start every step there (native backend)')
    .option('--cache-budget <MiB>', 'memory the --cache-frozen hidden states may take (default 2048); above it the run goes uncached', num('--cache-budget'))
    .action(async (model: string | undefined, flags: TrainFlags) => {
      // No model, no artifacts, not a resume: the embedded pretrained default, with its vocabulary.
      if (!model && !flags.artifacts && !flags.resume) {
        const d = defaultModel();
        process.stderr.write(`modtune: no model given: training the embedded default ${d.name}\n`);
        await runTrain({ ...flags, model: d.onnx, tokenizer: flags.tokenizer ?? d.tokenizer });
        return;
      }
      await runTrain({ ...flags, model });
    });
}

async function runTrain(options: TrainOptions): Promise<void> {
  await runStoppable(async ({ signal, log }) => {
    const s = await train({ ...options, signal, log, progress: process.stderr });
    const out = process.stdout;
    out.write(`\n${s.task} · ${s.selection} · ${s.trainableCount.toLocaleString('en-US')} of ${s.totalCount.toLocaleString('en-US')} parameters trained\n`);
    out.write(`${s.steps} steps (${s.epochs.toFixed(2)} epochs) in ${formatDuration(s.wallSeconds)}, ${s.examplesPerSec.toFixed(1)} examples/s, ${(100 * s.paddingShare).toFixed(1)}% padding${s.status === 'early-stopped' ? ', stopped early' : ''}\n\n`);
    out.write(`${metricsTable([
      { label: `best (step ${s.bestStep ?? '-'})`, metrics: s.bestMetrics },
      { label: `final (step ${s.steps})`, metrics: s.finalMetrics },
    ])}\n\nrun folder: ${s.runDir}\n`);
  }, (e): e is TrainInterrupted => e instanceof TrainInterrupted);
}
