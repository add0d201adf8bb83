import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Command } from 'commander';
import { ModtuneError } from '../../errors.js';
import { buildPulledModel, pullModel, type PullEvent } from '../../hub/index.js';
import { createProgress, formatBytes, type Progress } from '../../util/progress.js';

interface PullFlags {
  revision: string;
  out?: string;
  numLabels?: string;
  force?: boolean;
}

/** `modtune pull`: download a Hugging Face BERT-family repo into the cache and build its ONNX model. */
export function register(program: Command): void {
  program
    .command('pull')
    .description('download a Hugging Face model (config, safetensors, tokenizer) into the cache and build its ONNX model')
    .argument('<repo-id>', "Hub repo id, e.g. 'prajjwal1/bert-tiny' (endpoint: HF_ENDPOINT; private/gated repos: HF_TOKEN; cache: MODTUNE_CACHE)")
    .option('--revision <rev>', 'branch, tag or commit', 'main')
    .option('--out <file>', 'where to write the ONNX model (default: model.onnx in the cache folder)')
    .option('--force', 'download every file again, replacing what the cache holds')
    .option('--num-labels <n>', "add a sequence-classification head with n labels (default: the checkpoint's head, if any)")
    .action(async (repoId: string, flags: PullFlags) => {
      await runPull(repoId, flags);
    });
}

async function runPull(repoId: string, flags: PullFlags): Promise<void> {
  let numLabels: number | undefined;
  if (flags.numLabels !== undefined) {
    numLabels = Number(flags.numLabels);
    if (!/^\d+$/.test(flags.numLabels) || !Number.isSafeInteger(numLabels) || numLabels < 1) {
      throw new ModtuneError(`pull: --num-labels should be a positive integer, got '${flags.numLabels}'`);
    }
  }
  const bars = new Map<string, Progress>();
  const onProgress = (e: PullEvent) => {
    switch (e.kind) {
      case 'cached':
        process.stderr.write(`${e.file}: cached (${formatBytes(e.bytes)})\n`);
        break;
      case 'missing':
        process.stderr.write(`${e.file}: not in the repo\n`);
        break;
      case 'start': {
        // A retry starts a new bar; on a terminal it redraws over the interrupted one.
        const label = e.resumeFrom > 0 ? `${e.file} (resumed at ${formatBytes(e.resumeFrom)})` : e.file;
        bars.set(e.file, createProgress({ label, total: e.total, unit: 'bytes' }));
        break;
      }
      case 'progress':
        bars.get(e.file)?.update(e.done);
        break;
      case 'done':
        bars.get(e.file)?.done();
        bars.delete(e.file);
        break;
    }
  };

  const pulled = await pullModel(repoId, { revision: flags.revision, onProgress, force: flags.force });
  process.stdout.write(`pulled ${pulled.repoId}@${pulled.revision} into ${pulled.dir}\n`);
  process.stdout.write(`  files: ${pulled.files.join(', ')}\n`);

  const built = buildPulledModel(pulled.dir, { numLabels, out: flags.out });
  const sizes = built.files.map((f) => `${f} (${formatBytes(fs.statSync(f).size)})`);
  process.stdout.write(`wrote ${sizes.join(' + ')}\n`);
  const c = built.config;
  const outputs = built.model.graph.outputs.map((o) => `${o.name} [${(o.shape ?? []).join(', ')}]`).join(', ');
  process.stdout.write(`  ${c.modelType}: ${c.numHiddenLayers} layers, hidden ${c.hiddenSize}, ${built.parameters.toLocaleString('en-US')} parameters; outputs ${outputs}\n`);
  if (built.newHead) process.stdout.write(`  the classification head (${built.numLabels} labels) is newly initialised: fine-tune before use\n`);
  if (built.tokenizer) process.stdout.write(`  tokenizer: ${built.tokenizer}\n`);
}
