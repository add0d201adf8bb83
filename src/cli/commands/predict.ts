import * as fs from 'node:fs';
import type { Command } from 'commander';
import { ModtuneError } from '../../errors.js';
import { Prediction, PredictInput, Predictor } from '../../predict/predictor.js';
import type { RuntimeName } from '../../predict/runtime.js';
import { readTextsTsv, TextRow } from '../../predict/tsv.js';

interface PredictFlags {
  base?: string;
  text?: string;
  textPair?: string;
  file?: string;
  header?: boolean;
  json?: boolean;
  runtime: string;
  tokenizer?: string;
  batchSize: string;
  force?: boolean;
}

/** `modtune predict`: labels and probabilities (or scores) from a tuned model or a delta. */
export function register(program: Command): void {
  program
    .command('predict')
    .description('predict with a merged model, or with a delta folder applied to --base (the base or a serve-model model)')
    .argument('<model-or-delta>', "a merged .onnx ('modtune merge'), a Hugging Face sequence-classification ONNX export (labels from the config.json beside it), or a delta folder ('modtune export')")
    .option('--base <file>', 'with a delta folder: the base model, or a multi-task model from serve-model')
    .option('--text <text>', 'one input text')
    .option('--text-pair <text>', 'the second text, for pair tasks (MRPC, MNLI, ...)')
    .option('--file <tsv>', 'inputs, one per line: a text, or two tab-separated texts')
    .option('--header', 'the --file has a header line to skip')
    .option('--json', 'print one JSON object per input')
    .option('--runtime <name>', 'node (onnxruntime-node) or web (onnxruntime-web, WebAssembly)', 'node')
    .option('--tokenizer <file>', 'tokenizer.json or vocab.txt to use instead of the one the model/delta names')
    .option('--batch-size <n>', 'inputs per inference run', '32')
    .option('--force', "accept a delta whose base sha256 differs from --base's (shapes must still match)")
    .action(async (target: string, flags: PredictFlags) => {
      await runPredict(target, flags);
    });
}

async function runPredict(target: string, flags: PredictFlags): Promise<void> {
  if ((flags.text === undefined) === (flags.file === undefined)) throw new ModtuneError('predict: give exactly one of --text "..." or --file input.tsv');
  if (flags.textPair !== undefined && flags.text === undefined) throw new ModtuneError('predict: --text-pair goes with --text');
  if (flags.runtime !== 'node' && flags.runtime !== 'web') throw new ModtuneError(`predict: --runtime should be node or web, got '${flags.runtime}'`);
  const batchSize = Number(flags.batchSize);
  if (!/^\d+$/.test(flags.batchSize) || batchSize < 1) throw new ModtuneError(`predict: --batch-size should be a positive integer, got '${flags.batchSize}'`);
  if (!fs.existsSync(target)) throw new ModtuneError(`${target}: not found; expected a merged .onnx model or a delta folder`);
  const isDelta = fs.statSync(target).isDirectory();
  if (isDelta && !flags.base) throw new ModtuneError(`${target} is a delta folder: say which base model to apply it to with --base BASE.onnx`);
  if (!isDelta && flags.base) throw new ModtuneError(`--base goes with a delta folder; ${target} is a model file`);

  const rows: TextRow[] = flags.file !== undefined ? readTextsTsv(flags.file, { header: flags.header }) : [{ text: flags.text!, textPair: flags.textPair }];
  const predictor = await Predictor.load({
    base: isDelta ? flags.base! : target,
    deltas: isDelta ? [target] : undefined,
    runtime: flags.runtime as RuntimeName,
    tokenizer: flags.tokenizer,
    batchSize,
    force: flags.force,
  });
  try {
    const inputs: PredictInput[] = rows.map((r) => (r.textPair === undefined ? r.text : [r.text, r.textPair]));
    const predictions = await predictor.predict(inputs);
    const labels = predictor.labels;
    let out: string;
    if (flags.json) out = predictions.map((p, i) => JSON.stringify(toJson(rows[i]!, p, labels))).join('\n');
    else if (flags.file !== undefined) out = asTsv(predictions, labels);
    else out = asText(predictions[0]!, labels);
    process.stdout.write(out + '\n');
  } finally {
    await predictor.release();
  }
}

const fmt = (p: number) => p.toFixed(4);

function names(p: Prediction, labels: string[] | null): string[] {
  return labels ?? p.probabilities!.map((_, i) => String(i));
}

function toJson(row: TextRow, p: Prediction, labels: string[] | null): object {
  const base = { task: p.task, text: row.text, ...(row.textPair !== undefined ? { textPair: row.textPair } : {}) };
  if (p.score !== null) return { ...base, score: p.score };
  const n = names(p, labels);
  return { ...base, label: p.label, probabilities: Object.fromEntries(p.probabilities!.map((v, i) => [n[i], v])) };
}

function asText(p: Prediction, labels: string[] | null): string {
  if (p.score !== null) return `${p.task}: score ${fmt(p.score)}`;
  const n = names(p, labels);
  return `${p.task}: ${p.label} (${fmt(p.probabilities![p.index!]!)}); ${p.probabilities!.map((v, i) => `${n[i]} ${fmt(v)}`).join(', ')}`;
}

function asTsv(ps: Prediction[], labels: string[] | null): string {
  const first = ps[0]!;
  if (first.score !== null) return ['score', ...ps.map((p) => fmt(p.score!))].join('\n');
  const n = names(first, labels);
  return [['label', ...n.map((l) => `p(${l})`)].join('\t'), ...ps.map((p) => [p.label, ...p.probabilities!.map(fmt)].join('\t'))].join('\n');
}
