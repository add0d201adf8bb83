/**
 * A pre-trained model as a Hugging Face folder: `config.json` (BertForMaskedLM), `model.safetensors`
 * (encoder + MLM head, Hugging Face names and layout), `vocab.txt` and `tokenizer.json`, plus
 * `pretrain.json` saying what it was trained on and how far. `modtune build --config DIR` and
 * Hugging Face's `BertForMaskedLM.from_pretrained(DIR)` both read it.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ModtuneError } from '../errors.js';
import { parseHfConfig, toHfConfig, type BertConfig } from '../bert/config.js';
import { writeSafetensors } from '../bert/safetensors.js';
import { loadWeights, type WeightMap } from '../bert/weights.js';
import { bertTokenizerJson, parseVocab } from '../data/tokenizer-json.js';
import { writeAtomic } from '../onnx/io.js';

export interface PretrainRecord {
  format: 'modtune-pretrain';
  modtuneVersion: string;
  /** False while the run is still going (a checkpoint's snapshot) or was stopped early. */
  complete: boolean;
  corpus: { files: Array<{ path: string; sha256: string; tokens: number }>; trainTokens: number; heldOutTokens: number };
  /** Tokens seen by this run. */
  tokens: number;
  /** Tokens the --from model had seen before (its own pretrain.json), and the two together. */
  tokensBefore: number;
  tokensTotal: number;
  steps: number;
  totalSteps: number;
  wallSeconds: number;
  trainSeconds: number;
  heldOut: { loss: number; accuracy: number; sequences: number; step: number } | null;
  options: Record<string, unknown>;
}

export const MODEL_FILES = { config: 'config.json', weights: 'model.safetensors', vocab: 'vocab.txt', tokenizer: 'tokenizer.json', record: 'pretrain.json' } as const;

/** Write (or refresh) the model folder `dir` from the run's weights. Each file is replaced atomically. */
export function writeModelFolder(dir: string, m: { config: BertConfig; weights: WeightMap; vocabText: string; lowercase: boolean; record: PretrainRecord; fp16?: boolean }): void {
  fs.mkdirSync(dir, { recursive: true });
  const hf = { ...toHfConfig(m.config), architectures: ['BertForMaskedLM'] };
  writeAtomic(path.join(dir, MODEL_FILES.config), `${JSON.stringify(hf, null, 2)}\n`);
  const dtype = m.fp16 ? 'F16' as const : 'F32' as const;
  writeSafetensors(path.join(dir, MODEL_FILES.weights), new Map([...m.weights].map(([k, t]) => [k, { shape: t.shape, data: t.data, dtype }])), { format: 'pt' });
  writeAtomic(path.join(dir, MODEL_FILES.vocab), m.vocabText);
  const { vocab } = parseVocab(m.vocabText, MODEL_FILES.vocab);
  writeAtomic(path.join(dir, MODEL_FILES.tokenizer), `${JSON.stringify(bertTokenizerJson(vocab, { lowercase: m.lowercase, file: MODEL_FILES.vocab }))}\n`);
  writeAtomic(path.join(dir, MODEL_FILES.record), `${JSON.stringify(m.record, null, 2)}\n`);
}

export interface ModelFolder {
  dir: string;
  config: BertConfig;
  weights: WeightMap;
  /** vocab.txt or tokenizer.json in the folder, if any. */
  tokenizer: string | null;
}

/** Tokens a model folder's pre-training has seen in all (0 when it has no pretrain.json). */
export function tokensSeen(dir: string): number {
  try {
    const r = JSON.parse(fs.readFileSync(path.join(dir, MODEL_FILES.record), 'utf8')) as Partial<PretrainRecord>;
    return typeof r.tokensTotal === 'number' ? r.tokensTotal : typeof r.tokens === 'number' ? r.tokens : 0;
  } catch {
    return 0;
  }
}

/** Read a Hugging Face model folder (config.json + model.safetensors or its sharded index). */
export function readModelFolder(dir: string): ModelFolder {
  const configFile = path.join(dir, MODEL_FILES.config);
  let json: unknown;
  try {
    json = JSON.parse(fs.readFileSync(configFile, 'utf8'));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new ModtuneError(code === 'ENOENT' ? `${dir}: not a model folder (no config.json)` : `${configFile}: not valid JSON (${(e as Error).message})`);
  }
  const config = parseHfConfig(json, configFile);
  const weights = loadWeights(dir);
  const tokenizer = [MODEL_FILES.tokenizer, MODEL_FILES.vocab].map((f) => path.join(dir, f)).find((f) => fs.existsSync(f)) ?? null;
  return { dir, config, weights, tokenizer };
}
