import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Command } from 'commander';
import { ModtuneError } from '../../errors.js';
import { saveModel } from '../../onnx/io.js';
import { checkFiniteWeights } from '../../onnx/finite.js';
import { bundledUncasedVocab, copyTokenizerBeside } from '../../data/paths.js';
import { BertConfig, buildBert, countParameters, headLabelsInWeights, loadWeights, parseHfConfig, presetConfig, PRESETS, WeightMap } from '../../bert/index.js';

interface BuildFlags {
  preset?: string;
  config?: string;
  weights?: string;
  init: string;
  seed: string;
  numLabels?: string;
  regression?: boolean;
  pooler: boolean;
  perturbLayernorm?: boolean;
  externalData?: boolean;
  mlmHead?: boolean;
  out: string;
}

/** `modtune build`: write a BERT-family ONNX model from a preset or a Hugging Face config (+ weights). */
export function register(program: Command): void {
  program
    .command('build')
    .description('build a BERT-family ONNX model from a preset or a Hugging Face config.json, with safetensors weights or seeded random init')
    .option('--preset <name>', `architecture preset: ${Object.keys(PRESETS).join(', ')}`)
    .option('--config <file>', 'Hugging Face config.json (or the folder holding it)')
    .option('--weights <path>', 'model.safetensors, model.safetensors.index.json, or a folder with one (default: the one beside --config, else random init)')
    .option('--init <kind>', "random init: 'bert' (normal 0.02) or 'zeros' (shape-only)", 'bert')
    .option('--seed <n>', 'seed of the random init (and of a new head)', '0')
    .option('--num-labels <n>', 'add a sequence-classification head with n outputs (default: the checkpoint\'s head, if any)')
    .option('--regression', 'add a regression head (1 output)')
    .option('--no-pooler', 'leave out the pooler (BERT with no head)')
    .option('--mlm-head', "BertForMaskedLM's prediction head (decoder tied to the word embeddings): logits [batch, sequence, vocab], e.g. for fill-mask")
    .option('--perturb-layernorm', 'add small seeded noise to initialised LayerNorm weights and biases')
    .option('--external-data', 'always write weights to a side file (default: only when over 2 GB)')
    .requiredOption('--out <file>', 'output .onnx file')
    .action((flags: BuildFlags, cmd: Command) => {
      runBuild(flags, cmd.getOptionValueSource('pooler') === 'cli');
    });
}

function runBuild(flags: BuildFlags, poolerGiven: boolean): void {
  if (!!flags.preset === !!flags.config) throw new ModtuneError('build: give exactly one of --preset <name> or --config <config.json>');
  const config: BertConfig = flags.preset ? presetConfig(flags.preset) : readConfig(flags.config!);
  const seed = integerFlag('--seed', flags.seed);
  if (flags.init !== 'bert' && flags.init !== 'zeros') throw new ModtuneError(`build: --init should be 'bert' or 'zeros', got '${flags.init}'`);

  // Weights beside the config (a Hugging Face folder) are used unless --weights says otherwise.
  const configDir = flags.config ? configFolder(flags.config) : undefined;
  const weightsFile = flags.weights ?? (configDir ? weightsBeside(configDir) : undefined);
  let weights: WeightMap | undefined;
  if (weightsFile) weights = loadWeights(weightsFile);
  let numLabels = flags.numLabels !== undefined ? integerFlag('--num-labels', flags.numLabels) : undefined;
  if (numLabels === 0) throw new ModtuneError('build: --num-labels should be at least 1');
  if (flags.mlmHead && (flags.numLabels !== undefined || flags.regression)) throw new ModtuneError('build: --mlm-head builds a masked-LM; it cannot also have --num-labels or --regression');
  const checkpointLabels = weights ? headLabelsInWeights(weights, config) : undefined;
  if (numLabels === undefined && !flags.regression && checkpointLabels !== undefined) numLabels = checkpointLabels;

  const model = buildBert({
    config,
    weights,
    weightsLabel: weightsFile,
    init: flags.init,
    seed,
    perturbLayerNorm: flags.perturbLayernorm,
    // BertForMaskedLM has no pooler; a masked-LM checkpoint's cls.* tensors are ignored without --mlm-head.
    pooler: poolerGiven ? flags.pooler : flags.mlmHead ? false : undefined,
    numLabels: flags.regression || flags.mlmHead ? undefined : numLabels,
    regression: flags.regression,
    ...(flags.mlmHead && { mlmHead: 'all' as const }),
  });
  if (weights) checkFiniteWeights(model, weightsFile!);
  const files = saveModel(model, flags.out, { externalData: flags.externalData ? true : 'auto' });
  // The tokenizer travels with the model: the config folder's, or for a preset the uncased BERT vocabulary.
  const tokenizerSource = configDir ? tokenizerIn(configDir) : bundledUncasedVocab();
  const tokenizer = tokenizerSource ? copyTokenizerBeside(tokenizerSource, flags.out) : undefined;

  const sizes = files.map((f) => `${f} (${formatBytes(fs.statSync(f).size)})`);
  process.stdout.write(`wrote ${sizes.join(' + ')}\n`);
  const outputs = model.graph.outputs.map((o) => `${o.name} [${(o.shape ?? []).join(', ')}]`).join(', ');
  process.stdout.write(`${config.modelType}: ${config.numHiddenLayers} layers, hidden ${config.hiddenSize}, ${countParameters(model).toLocaleString('en-US')} parameters; outputs ${outputs}\n`);
  const headLabels = model.graph.outputs.some((o) => o.name === 'logits');
  if (weights) process.stdout.write(`weights: ${weightsFile}\n`);
  if (weights && headLabels && checkpointLabels === undefined && !flags.mlmHead) {
    process.stdout.write(`the checkpoint has no classification head: initialised a new one (seed ${seed})\n`);
  }
  if (tokenizer) process.stdout.write(`tokenizer: ${tokenizer}${configDir ? '' : ' (the uncased BERT vocabulary)'}\n`);
  else process.stdout.write(`no tokenizer beside ${flags.config}: pass --tokenizer to artifacts and train\n`);
  if (!weights) {
    const why = flags.config ? `no --weights given and no model.safetensors (or its index) beside ${flags.config}` : `a preset has no pretrained weights`;
    process.stderr.write(`modtune build: WARNING: ${flags.out} has RANDOM weights (${flags.init === 'zeros' ? 'zeros' : `seed ${seed}`}): ${why}; predictions are meaningless until it is trained\n`);
  }
}

/** The folder of a config given as a file or a folder. */
function configFolder(location: string): string {
  return fs.existsSync(location) && fs.statSync(location).isDirectory() ? location : path.dirname(location);
}

/** model.safetensors, or the sharded index, in a Hugging Face folder. */
function weightsBeside(dir: string): string | undefined {
  return ['model.safetensors', 'model.safetensors.index.json'].map((f) => path.join(dir, f)).find((f) => fs.existsSync(f));
}

function tokenizerIn(dir: string): string | undefined {
  return ['tokenizer.json', 'vocab.txt'].map((f) => path.join(dir, f)).find((f) => fs.existsSync(f));
}

function readConfig(location: string): BertConfig {
  let file = location;
  if (fs.existsSync(location) && fs.statSync(location).isDirectory()) file = path.join(location, 'config.json');
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new ModtuneError(`${file}: cannot read config (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new ModtuneError(`${file}: not valid JSON (${(e as Error).message})`);
  }
  return parseHfConfig(json, file);
}

function integerFlag(flag: string, value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n)) throw new ModtuneError(`build: ${flag} should be a non-negative integer, got '${value}'`);
  return n;
}

function formatBytes(n: number): string {
  if (n >= 2 ** 30) return `${(n / 2 ** 30).toFixed(2)} GiB`;
  if (n >= 2 ** 20) return `${(n / 2 ** 20).toFixed(1)} MiB`;
  if (n >= 2 ** 10) return `${(n / 2 ** 10).toFixed(1)} KiB`;
  return `${n} B`;
}
