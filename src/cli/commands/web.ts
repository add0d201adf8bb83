import type { Command } from 'commander';
import { formatBytes } from '../../export/format.js';
import { isLoopback, serveWeb } from '../../web/index.js';
import { intFlag, numberFlag } from '../parse.js';

interface WebFlags {
  model?: string;
  deltas?: string[];
  port?: string;
  host?: string;
  tokenizer?: string;
  data?: string;
  trainTasks?: string[];
  lr?: string;
}

/** `modtune web`: the browser page, serving one base model with swappable deltas and on-device tuning. */
export function register(program: Command): void {
  program
    .command('web')
    .description('serve a page that predicts with one base model and swappable task deltas, and tunes LayerNorms on the device (onnxruntime-web)')
    .option('--model <base>', 'base ONNX model (default: the embedded default model)')
    .option('--deltas <delta-dirs...>', "delta folders from 'modtune export', served as tasks")
    .option('--port <n>', 'port (0: any free one)', '8080')
    .option('--host <address>', 'address to listen on', '127.0.0.1')
    .option('--tokenizer <file>', 'tokenizer for on-device training (tokenizer.json or vocab.txt)')
    .option('--data <dir>', 'GLUE data folder whose train/dev rows the page can train on')
    .option('--train-tasks <tasks...>', 'GLUE tasks offered for on-device training (default: all found)')
    .option('--lr <rate>', 'on-device learning rate (constant)', '1e-3')
    .action(async (flags: WebFlags) => {
      const host = flags.host ?? '127.0.0.1';
      const server = await serveWeb({
        model: flags.model, deltas: flags.deltas, port: intFlag('--port', flags.port), host, tokenizer: flags.tokenizer, data: flags.data,
        trainTasks: flags.trainTasks, lr: numberFlag('--lr', flags.lr), log: (line) => process.stderr.write(`${line}\n`),
      });
      const m = server.site.manifest;
      const lines = [
        `modtune web: ${server.url}`,
        `  model     ${m.base.file} (${formatBytes(m.model.bytes)}), ${m.tasks.length} task${m.tasks.length === 1 ? '' : 's'}${m.tasks.length ? `: ${m.tasks.map((t) => t.name).join(', ')}` : ''}`,
        `  training  ${m.training.tasks.map((t) => t.name).join(', ') || 'no GLUE data found (pass --data)'}`,
        `  files     ${server.site.dir}`,
      ];
      if (!isLoopback(host)) lines.push(`  warning: listening on ${host}, reachable from other machines; the page needs a secure context (https or localhost) to check hashes`);
      lines.push('Ctrl-C stops it.');
      process.stdout.write(lines.join('\n') + '\n');
      await new Promise<void>((resolve) => {
        const stop = () => resolve();
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      });
      await server.close();
    });
}
