import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Command } from 'commander';
import { generateArtifacts } from '../../artifacts/generate.js';
import { formatCount, formatShare } from '../../modules/index.js';
import { choiceFlag, intFlag, maxGradNormFlag, numberFlag } from '../parse.js';

interface ArtifactFlags {
  train: string;
  task?: string;
  numLabels?: string;
  regression?: boolean;
  format: string;
  optimizer?: string;
  lr?: string;
  lrSchedule?: string;
  warmupRatio?: string;
  totalSteps?: string;
  weightDecay?: string;
  maxGradNorm?: number;
  dropout?: string;
  newHead?: boolean;
  freezeHead?: boolean;
  tokenizer?: string;
  maxLength?: string;
  seed?: string;
  out?: string;
  force?: boolean;
  cacheFrozen?: boolean;
}

/** `modtune artifacts`: turn a model + selection into training artifacts. */
export function register(program: Command): void {
  program
    .command('artifacts')
    .description('build training artifacts in which only the selected parameters train')
    .argument('<model>', 'base model (.onnx)')
    .requiredOption('--train <spec>', "what trains: e.g. layernorm, attention@0-5, bias, layernorm:top=5% (comma-separated)")
    .option('--task <name>', 'GLUE task (sets the head and label list)')
    .option('--num-labels <n>', 'classification head with n labels (without --task)')
    .option('--regression', 'regression head (1 output, MSE)')
    .option('--format <f>', 'native | ort | both', 'native')
    .option('--optimizer <name>', 'adamw | sgd', 'adamw')
    .option('--lr <x>', 'base learning rate (default: 2e-5 for full fine-tuning, 1e-4 for up to 10% of the parameters, 1e-3 for up to 0.5%)')
    .option('--lr-schedule <kind>', 'linear | constant', 'linear')
    .option('--warmup-ratio <r>', 'share of the total steps spent warming up', '0')
    .option('--total-steps <n>', 'steps of the linear schedule (ort format bakes it in)')
    .option('--weight-decay <w>', 'AdamW decoupled weight decay (not on biases and LayerNorm weights)', '0.01')
    .option('--max-grad-norm <x>', 'clip the global gradient norm to x before each update (0 or none: no clipping)', maxGradNormFlag, 1)
    .option('--dropout <p>', 'dropout probability everywhere (default: the model config\'s rates; 0: deterministic)')
    .option('--new-head', 're-initialise the classification head')
    .option('--freeze-head', 'keep the classification head frozen')
    .option('--tokenizer <path>', 'tokenizer.json or vocab.txt to record (default: one beside the model)')
    .option('--max-length <n>', 'maximum sequence length recorded for the tokenizer (default 128, or the model\'s max_position_embeddings when smaller)')
    .option('--seed <n>', 'seed for a new head and random= selections', '42')
    .option('--out <dir>', 'output folder (default artifacts/<model>-<selection>)')
    .option('--force', 'replace an existing artifacts folder (only one with a modtune manifest.json)')
    .option('--cache-frozen', 'also write the models of train --cache-frozen: the frozen layers below the first trained one (no dropout there), and the rest taking their output')
    .action((model: string, f: ArtifactFlags) => {
      const t0 = performance.now();
      const r = generateArtifacts({
        model,
        train: f.train,
        out: f.out ?? defaultOut(model, f.train),
        task: f.task,
        numLabels: intFlag('--num-labels', f.numLabels, 2),
        regression: f.regression,
        format: choiceFlag('--format', f.format, ['native', 'ort', 'both'] as const),
        optimizer: choiceFlag('--optimizer', f.optimizer, ['adamw', 'sgd'] as const),
        lr: numberFlag('--lr', f.lr),
        lrSchedule: choiceFlag('--lr-schedule', f.lrSchedule, ['linear', 'constant'] as const),
        warmupRatio: numberFlag('--warmup-ratio', f.warmupRatio),
        totalSteps: intFlag('--total-steps', f.totalSteps, 1),
        weightDecay: numberFlag('--weight-decay', f.weightDecay),
        maxGradNorm: f.maxGradNorm,
        dropout: numberFlag('--dropout', f.dropout),
        newHead: f.newHead,
        freezeHead: f.freezeHead,
        tokenizer: f.tokenizer,
        maxLength: f.maxLength === undefined ? undefined : intFlag('--max-length', f.maxLength, 2),
        seed: intFlag('--seed', f.seed),
        cacheFrozen: f.cacheFrozen,
        force: f.force,
      });
      const m = r.manifest;
      const lines = [
        `wrote ${displayPath(r.dir)} in ${((performance.now() - t0) / 1000).toFixed(1)} s`,
        ...r.files.map((file) => `  ${path.relative(r.dir, file).padEnd(28)} ${formatBytes(fs.statSync(file).size)}`),
        `task: ${m.task.name ?? '-'} (${m.task.head.kind === 'classification' ? `${m.task.head.numLabels} labels` : 'regression'}, head ${m.task.headReused ? 'kept from the model' : 'new'})`,
        `selection: ${m.selection.spec} → ${m.parameters.length} tensors`,
        `trainable: ${formatCount(m.selection.trainableCount)} of ${formatCount(m.selection.totalCount)} (${formatShare(m.selection.trainableCount, m.selection.totalCount)})`,
        ...(r.frozenPrefix ? ['layer' in r.frozenPrefix
          ? `cache-frozen: frozen_prefix.onnx computes the embeddings and ${r.frozenPrefix.layer === 1 ? 'layer 0' : `layers 0–${r.frozenPrefix.layer - 1}`} (no dropout there); the cached_* models start at layer ${r.frozenPrefix.layer}`
          : `cache-frozen: nothing to cache: ${r.frozenPrefix.nothing}`] : []),
      ];
      process.stdout.write(lines.join('\n') + '\n');
    });
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 ** 2) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 ** 3) return `${(n / 1024 ** 2).toFixed(1)} MiB`;
  return `${(n / 1024 ** 3).toFixed(2)} GiB`;
}

/** A path relative to the working folder when it lies inside it, else absolute. */
export function displayPath(p: string): string {
  const rel = path.relative(process.cwd(), p);
  return rel && !rel.startsWith('..') && !path.isAbsolute(rel) ? rel : p;
}

/** `artifacts/<model file stem>-<selection spec, made file-name safe>`. */
export function defaultOut(model: string, spec: string): string {
  const stem = path.basename(model).replace(/\.onnx$/i, '');
  return path.join('artifacts', `${stem}-${spec.replace(/[^A-Za-z0-9@.=-]+/g, '_')}`);
}
