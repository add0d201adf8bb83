import * as fs from 'node:fs';
import * as path from 'node:path';
import { ModtuneError } from '../errors.js';
import { saveModel } from '../onnx/io.js';
import { checkFiniteWeights } from '../onnx/finite.js';
import { copyTokenizerBeside } from '../data/paths.js';
import type { Model } from '../onnx/graph.js';
import { BertConfig, WeightMap, buildBert, countParameters, headLabelsInWeights, loadWeights, parseHfConfig } from '../bert/index.js';

export interface BuildPulledOptions {
  /** A classification head with this many labels. Default: the checkpoint's head, if it has one. */
  numLabels?: number;
  /** Default: `<dir>/model.onnx`. */
  out?: string;
  /** Seed of a newly initialised head. */
  seed?: number;
}

export interface BuiltModel {
  model: Model;
  config: BertConfig;
  /** The model file first, then any external-data file. */
  files: string[];
  /** 0: no head (outputs last_hidden_state). */
  numLabels: number;
  /** The head was initialised here rather than loaded from the checkpoint. */
  newHead: boolean;
  parameters: number;
  /** The tokenizer beside the model (`<model>.tokenizer.json` / `.vocab.txt` when `out` is elsewhere), if the repo has one. */
  tokenizer?: string;
}

/** Build the ONNX model of a pulled (or any local) Hugging Face folder: config.json + safetensors. */
export function buildPulledModel(dir: string, opts: BuildPulledOptions = {}): BuiltModel {
  const configFile = path.join(dir, 'config.json');
  let json: unknown;
  try {
    json = JSON.parse(fs.readFileSync(configFile, 'utf8'));
  } catch (e) {
    throw new ModtuneError(`${configFile}: cannot read the model config (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  const config = parseHfConfig(json, configFile);
  let weights: WeightMap = loadWeights(dir);

  if (opts.numLabels !== undefined && (!Number.isSafeInteger(opts.numLabels) || opts.numLabels < 1)) {
    throw new ModtuneError(`numLabels should be a positive integer, got ${opts.numLabels}`);
  }
  const checkpointLabels = headLabelsInWeights(weights, config);
  const numLabels = opts.numLabels ?? checkpointLabels ?? 0;
  let newHead = numLabels > 0 && checkpointLabels === undefined;
  if (numLabels > 0 && checkpointLabels !== undefined && checkpointLabels !== numLabels) {
    // A head for other labels: like Hugging Face with ignore_mismatched_sizes, start a new one.
    weights = new Map([...weights].filter(([name]) => !/^classifier\./.test(name)));
    newHead = true;
  }

  const model = buildBert({ config, weights, weightsLabel: dir, numLabels: numLabels || undefined, seed: opts.seed });
  checkFiniteWeights(model, dir);
  const out = opts.out ?? path.join(dir, 'model.onnx');
  const files = saveModel(model, out, { externalData: 'auto' });
  // The tokenizer travels with the model: copied beside an --out outside the downloaded folder.
  const sources = ['tokenizer.json', 'vocab.txt'].map((f) => path.join(dir, f)).filter((f) => fs.existsSync(f));
  const outside = path.resolve(path.dirname(out)) !== path.resolve(dir);
  const copies = outside ? sources.map((f) => copyTokenizerBeside(f, out)) : sources;
  return { model, config, files, numLabels, newHead, parameters: countParameters(model), tokenizer: copies[0] };
}
