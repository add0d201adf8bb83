/**
 * The embedded default model: a BERT pre-trained by `modtune pretrain` and shipped in the package as a
 * Hugging Face folder (`models/<name>/`: config.json, model.safetensors, vocab.txt). Commands that
 * need a model and were given none build its ONNX graph once into the cache, with its vocabulary
 * beside it, and use that. The random-weights control of the same shape is built the same way.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ModtuneError } from '../errors.js';
import { modtuneCacheDir, packageRoot } from '../data/paths.js';
import { saveModel } from '../onnx/io.js';
import { buildBert } from './build.js';
import { parseHfConfig } from './config.js';
import { presetConfig } from './presets.js';
import { loadWeights } from './weights.js';

/** The folder name under `models/` of the pretrained default. */
export const DEFAULT_MODEL_NAME = 'bert-mini-wikibooks';

export interface PackagedModel {
  /** Short name for messages. */
  name: string;
  /** The built ONNX model (encoder + pooler, no task head: `train` adds one). */
  onnx: string;
  /** vocab.txt beside it. */
  tokenizer: string;
  /** True for the random-weights control. */
  random: boolean;
}

/** The packaged model folder `models/<name>/`. */
export function packagedModelDir(name = DEFAULT_MODEL_NAME): string {
  const root = packageRoot();
  const dir = root ? path.join(root, 'models', name) : undefined;
  if (!dir || !fs.existsSync(path.join(dir, 'config.json'))) {
    throw new ModtuneError(`the embedded default model models/${name}/ is missing from this installation; pass --model`);
  }
  return dir;
}

/** Build (once) and return the pretrained default's ONNX model and vocabulary. */
export function defaultModel(cacheDir?: string, name = DEFAULT_MODEL_NAME): PackagedModel {
  const dir = packagedModelDir(name);
  const weightsFile = path.join(dir, 'model.safetensors');
  const hash = crypto.createHash('sha256').update(fs.readFileSync(weightsFile)).update(fs.readFileSync(path.join(dir, 'config.json'))).digest('hex').slice(0, 16);
  const out = path.join(modtuneCacheDir(cacheDir), 'models', `${name}-${hash}`);
  const onnx = path.join(out, `${name}.onnx`);
  const tokenizer = path.join(out, 'vocab.txt');
  if (!fs.existsSync(onnx) || !fs.existsSync(tokenizer)) {
    const config = parseHfConfig(JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8')), path.join(dir, 'config.json'));
    // A masked-LM checkpoint has no pooler: Hugging Face (and we) initialise it, seeded, for fine-tuning.
    const model = buildBert({ config, weights: loadWeights(dir), weightsLabel: weightsFile, pooler: true, seed: 0 });
    fs.mkdirSync(out, { recursive: true });
    fs.copyFileSync(path.join(dir, 'vocab.txt'), tokenizer);
    saveModel(model, onnx);
  }
  return { name, onnx, tokenizer, random: false };
}

/** The control: the default's shape and vocabulary with BERT's seeded random initialisation. */
export function randomControlModel(cacheDir?: string, seed = 0, name = DEFAULT_MODEL_NAME): PackagedModel {
  const dir = packagedModelDir(name);
  const config = parseHfConfig(JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8')), path.join(dir, 'config.json'));
  const preset = presetConfig('bert-mini');
  const shape = `${config.numHiddenLayers}x${config.hiddenSize}-v${config.vocabSize}`;
  const out = path.join(modtuneCacheDir(cacheDir), 'models', `random-${shape}-seed${seed}`);
  const onnx = path.join(out, `random-${shape}.onnx`);
  const tokenizer = path.join(out, 'vocab.txt');
  if (!fs.existsSync(onnx) || !fs.existsSync(tokenizer)) {
    fs.mkdirSync(out, { recursive: true });
    fs.copyFileSync(path.join(dir, 'vocab.txt'), tokenizer);
    saveModel(buildBert({ config: { ...preset, ...config }, seed, pooler: true }), onnx);
  }
  return { name: `random ${config.numHiddenLayers}-layer, hidden ${config.hiddenSize}`, onnx, tokenizer, random: true };
}
