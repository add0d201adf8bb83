import type { Command } from 'commander';
import { formatDuration } from '../../util/progress.js';
import { pretrain, PretrainInterrupted, type PretrainOptions } from '../../pretrain/run.js';
import { int, num } from './train.js';
import { runStoppable } from '../stoppable.js';
import { ModtuneError } from '../../errors.js';
import { modtuneCacheDir } from '../../data/paths.js';
import { evaluateModelFolder } from '../../pretrain/evaluate.js';

interface PretrainFlags {
  corpus?: string[]; out?: string; from?: string; preset?: string; tokenizer?: string; train?: string; freezeHead?: boolean;
  seqLen?: number; batchSize?: number; gradAccum?: number; lr?: number; warmupRatio?: number; weightDecay?: number; maxGradNorm?: number;
  dropout?: number; maskRate?: number; wholeWord?: boolean; tokens?: number; steps?: number; evalEvery?: number; evalSequences?: number;
  saveEvery?: number; seed?: number; threads?: number; resume?: boolean; force?: boolean; fp16?: boolean; evaluate?: boolean;
}

/** `modtune pretrain`: masked-LM pre-training on a text corpus into a Hugging Face model folder. */
export function register(program: Command): void {
  program
    .command('pretrain')
    .description('pre-train a BERT with masked-LM on text files, writing a Hugging Face model folder (config.json, model.safetensors, vocab.txt)')
    .option('--corpus <paths...>', 'files or folders of .txt / .txt.gz, one paragraph per line, blank line between documents')
    .option('--out <dir>', 'model folder to write (training state goes to <dir>/training/)')
    .option('--from <dir>', 'continue pre-training this model folder (domain adaptation) instead of a fresh model')
    .option('--preset <name>', 'shape of a fresh model: bert-tiny, bert-mini, bert-small, ... (default bert-mini)')
    .option('--tokenizer <file>', 'vocab.txt or tokenizer.json (default: the --from model\'s, else the uncased BERT vocabulary)')
    .option('--train <spec>', 'modules to train, as for `train` (default full); the MLM head trains unless --freeze-head')
    .option('--freeze-head', 'do not train the MLM head')
    .option('--seq-len <n>', 'tokens per sequence, [CLS] and [SEP] included (default 128)', int('--seq-len'))
    .option('--batch-size <n>', 'sequences per micro-batch (default 32)', int('--batch-size'))
    .option('--grad-accum <n>', 'micro-batches per update (default 1)', int('--grad-accum'))
    .option('--lr <x>', 'peak learning rate (default 5e-4)', num('--lr'))
    .option('--warmup-ratio <x>', 'fraction of the updates spent warming up, then linear decay to 0 (default 0.06)', num('--warmup-ratio'))
    .option('--weight-decay <x>', 'AdamW decoupled weight decay (default 0.01)', num('--weight-decay'))
    .option('--max-grad-norm <x>', 'clip the global gradient norm (default 1.0; 0: no clipping)', num('--max-grad-norm'))
    .option('--dropout <p>', "dropout everywhere (default: the model's config, 0.1)", num('--dropout'))
    .option('--mask-rate <x>', 'share of tokens predicted (default 0.15; 80% [MASK], 10% random, 10% kept)', num('--mask-rate'))
    .option('--whole-word', 'mask whole words (a piece and its ## continuations) together')
    .option('--tokens <n>', 'budget: tokens seen (sequences × sequence length)', num('--tokens'))
    .option('--steps <n>', 'budget: optimizer updates', int('--steps'))
    .option('--eval-every <n>', 'held-out MLM loss and accuracy every n updates (default 500)', int('--eval-every'))
    .option('--eval-sequences <n>', 'held-out sequences evaluated (default 256)', int('--eval-sequences'))
    .option('--save-every <n>', 'checkpoint (and refresh the model folder) every n updates (default 200)', int('--save-every'))
    .option('--seed <n>', 'seed of the initialisation, data order and masks (default 0)', int('--seed'))
    .option('--threads <n>', 'ONNX Runtime intra-op threads (default: all cores)', int('--threads'))
    .option('--fp16', "store the model folder's weights as float16 (half the size; checkpoints stay float32)")
    .option('--evaluate', 'only print the held-out MLM loss and masked-token accuracy of the --from model on --corpus')
    .option('--resume', 'continue the run in --out from its latest checkpoint')
    .option('--force', 'start the run in --out over')
    .action(async (flags: PretrainFlags) => {
      if (flags.evaluate) {
        if (!flags.from || !flags.corpus?.length) throw new ModtuneError('--evaluate needs --from MODEL_DIR and --corpus PATH...');
        const r = await evaluateModelFolder({ model: flags.from, corpus: flags.corpus, cacheDir: modtuneCacheDir(), seqLen: flags.seqLen, batchSize: flags.batchSize,
          evalSequences: flags.evalSequences, seed: flags.seed, maskRate: flags.maskRate, wholeWord: flags.wholeWord, threads: flags.threads });
        process.stdout.write(`held-out MLM loss ${r.loss.toFixed(4)}, masked-token accuracy ${(100 * r.accuracy).toFixed(2)}% (${r.sequences} sequences, ${r.maskedTokens} masked tokens)\n`);
        return;
      }
      if (!flags.out) throw new ModtuneError('--out DIR is required: the model folder to write');
      await runPretrain({ ...flags, out: flags.out });
    });
}

async function runPretrain(options: PretrainOptions): Promise<void> {
  await runStoppable(async ({ signal, log }) => {
    const s = await pretrain({ ...options, signal, log, progress: process.stderr });
    const h = s.heldOut;
    process.stdout.write(`\n${s.steps} steps, ${s.tokens.toLocaleString('en-US')} tokens in ${formatDuration(s.wallSeconds)} (${Math.round(s.tokensPerSec).toLocaleString('en-US')} tokens/s)\n` +
      (h ? `held-out MLM loss ${h.loss.toFixed(4)}, masked-token accuracy ${(100 * h.accuracy).toFixed(2)}% (${h.sequences} sequences)\n` : '') +
      `model folder: ${s.out}\n`);
  }, (e): e is PretrainInterrupted => e instanceof PretrainInterrupted);
}
