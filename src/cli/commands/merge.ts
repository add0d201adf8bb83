import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Command } from 'commander';
import { formatBytes } from '../../export/format.js';
import { mergeFiles } from '../../export/merge.js';

interface MergeFlags {
  out: string;
  fp16?: boolean;
  force?: boolean;
}

/** `modtune merge`: base model + delta → one tuned inference model. */
export function register(program: Command): void {
  program
    .command('merge')
    .description('apply a delta to its base model: one inference model (input ids → logits) for any ONNX Runtime')
    .argument('<base>', 'the base ONNX model the delta was trained from')
    .argument('<delta-dir>', "a delta folder from 'modtune export'")
    .requiredOption('--out <file>', 'tuned model to write (.onnx)')
    .option('--fp16', 'store the big weights as float16 (half the file; computed in float32)')
    .option('--force', "replace an --out that modtune merge wrote; accept a base whose sha256 differs from the delta's (shapes must still match)")
    .action((base: string, deltaDir: string, flags: MergeFlags) => {
      const r = mergeFiles({ base, delta: deltaDir, out: flags.out, fp16: flags.fp16, force: flags.force });
      const [model, ...rest] = r.files;
      const m = r.delta.manifest;
      const lines = [
        `wrote ${flags.out} (${formatBytes(fs.statSync(model!).size)})${rest.length ? ` + ${rest.map((f) => path.basename(f)).join(' + ')}` : ''}`,
        `applied ${m.parameters.length} tensors of delta ${r.delta.sha256.slice(0, 12)} (task ${m.task.name ?? '(custom)'}) to ${base}`,
      ];
      if (r.base.sha256 !== m.base.sha256) lines.push(`warning: base sha256 differs from the delta's (--force)`);
      if (r.fp16) lines.push(`fp16: ${r.fp16.tensors} weight tensors stored as float16 (${formatBytes(r.fp16.bytesBefore)} → ${formatBytes(r.fp16.bytesAfter)})`);
      process.stdout.write(lines.join('\n') + '\n');
    });
}
