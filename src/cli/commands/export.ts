import * as path from 'node:path';
import type { Command } from 'commander';
import { exportDelta } from '../../export/export.js';
import { describeHead, describeMetrics, formatBytes, formatCount } from '../../export/format.js';

interface ExportFlags {
  checkpoint: string;
  out: string;
  diff?: boolean;
  force?: boolean;
}

/** `modtune export`: a training run's checkpoint → a delta folder (delta.safetensors + delta.json + tokenizer). */
export function register(program: Command): void {
  program
    .command('export')
    .description('write the tuned parameters of a run (and a new head) as a small delta: delta.safetensors + delta.json + tokenizer')
    .argument('<run-dir>', "the --out folder of 'modtune train'")
    .option('--checkpoint <which>', 'best, last, or a step number', 'best')
    .requiredOption('--out <dir>', 'delta folder to write')
    .option('--diff', 'store differences from the base instead of values')
    .option('--force', 'replace an existing delta folder')
    .action((runDir: string, flags: ExportFlags) => {
      const r = exportDelta({ run: runDir, checkpoint: flags.checkpoint, out: flags.out, diff: flags.diff, force: flags.force });
      const m = r.manifest;
      const values = m.parameters.reduce((s, p) => s + p.shape.reduce((a, b) => a * b, 1), 0);
      const others = r.files.filter((f) => !f.endsWith('delta.safetensors')).map((f) => path.basename(f));
      const lines = [
        `wrote ${path.join(flags.out, 'delta.safetensors')} (${formatBytes(r.bytes)}: ${m.parameters.length} tensors, ${formatCount(values)} ${m.diff ? 'values as differences from the base' : 'values'}) + ${others.join(' + ')}`,
        `checkpoint ${r.checkpoint.name}${r.checkpoint.step !== null && r.checkpoint.name === 'best' ? ` (step ${r.checkpoint.step})` : ''}: ${describeMetrics(r.checkpoint.metrics)}`,
        `task ${m.task.name ?? '(custom)'}: ${describeHead(m.task.head, m.task.labels)}, ${m.task.newHead ? 'new head (in the delta)' : "the base model's head"}`,
        `selection '${m.selection.spec}': ${formatCount(m.selection.trainableCount)} of ${formatCount(m.selection.totalCount)} parameters trained`,
        `base sha256 ${m.base.sha256.slice(0, 16)}… (${m.base.family}, ${m.base.numLayers} layers, hidden ${m.base.hiddenSize})`,
      ];
      process.stdout.write(lines.join('\n') + '\n');
    });
}
