import type { Command } from 'commander';
import { FillMask } from '../../predict/fill-mask.js';
import { int } from './train.js';

/** `modtune fill-mask`: the most likely tokens at each [MASK] of a text (a pre-trained model's sanity check). */
export function register(program: Command): void {
  program
    .command('fill-mask')
    .description('predict the tokens at each [MASK] of a text with a masked-LM (a `modtune pretrain` folder or an ONNX model with [batch, sequence, vocab] logits)')
    .argument('<model>', 'model folder (config.json + model.safetensors) or .onnx file')
    .requiredOption('--text <text>', 'text with one or more [MASK] tokens, e.g. "the capital of france is [MASK]."')
    .option('--top-k <n>', 'candidates per [MASK] (default 5)', int('--top-k'))
    .option('--tokenizer <file>', 'vocab.txt or tokenizer.json (default: the one beside the model)')
    .option('--json', 'print, for each [MASK], an array of {token, score}')
    .action(async (model: string, flags: { text: string; topK?: number; tokenizer?: string; json?: boolean }) => {
      const fm = await FillMask.load({ model, tokenizer: flags.tokenizer });
      try {
        const filled = await fm.fill(flags.text, flags.topK ?? 5);
        if (flags.json) {
          process.stdout.write(`${JSON.stringify(filled.map((c) => c.map(({ token, score }) => ({ token, score }))))}\n`);
          return;
        }
        filled.forEach((candidates, i) => {
          if (filled.length > 1) process.stdout.write(`[MASK] ${i + 1}:\n`);
          for (const c of candidates) process.stdout.write(`  ${c.token.padEnd(16)} ${c.score.toFixed(4)}\n`);
        });
      } finally {
        await fm.release();
      }
    });
}
