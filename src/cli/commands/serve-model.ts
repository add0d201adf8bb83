import * as fs from 'node:fs';
import type { Command } from 'commander';
import { deltaNumLabels } from '../../export/delta.js';
import { formatBytes, formatCount } from '../../export/format.js';
import { serveModelFiles } from '../../export/multitask.js';

interface ServeFlags {
  tasks: string[];
  out: string;
  force?: boolean;
}

/** `modtune serve-model`: one model for several deltas of a base; a task is chosen by the tensors fed. */
export function register(program: Command): void {
  program
    .command('serve-model')
    .description('one multi-task inference model for several deltas of one base: the frozen weights once, each task switched by feeding its delta')
    .argument('<base>', 'the base ONNX model the deltas were trained from')
    .requiredOption('--tasks <delta-dirs...>', "delta folders from 'modtune export'")
    .requiredOption('--out <file>', 'multi-task model to write (.onnx)')
    .option('--force', "replace an --out that modtune serve-model wrote; accept deltas whose base sha256 differs from the base's (shapes must still match)")
    .action((base: string, flags: ServeFlags) => {
      const r = serveModelFiles({ base, deltas: flags.tasks, out: flags.out, force: flags.force });
      const meta = r.served.meta;
      const values = meta.switchable.reduce((s, t) => s + t.shape.reduce((a, b) => a * b, 1), 0);
      const lines = [
        `wrote ${flags.out} (${formatBytes(fs.statSync(r.files[0]!).size)})`,
        `${meta.tasks.length} tasks: ${meta.tasks.map((t, i) => `${t.name} (${r.deltas[i]!.manifest.task.head.kind === 'regression' ? 'regression' : `${deltaNumLabels(r.deltas[i]!.manifest)} labels`})`).join(', ')}`,
        `${meta.switchable.length} switchable tensors (${formatCount(values)} values) are graph inputs defaulting to the base values; head rows: ${meta.maxLabels}`,
        `predict with: modtune predict <delta-dir> --base ${flags.out}`,
      ];
      process.stdout.write(lines.join('\n') + '\n');
    });
}
