/**
 * A plain Hugging Face sequence-classification ONNX export (torch.onnx, optimum): no modtune
 * metadata, its labels in the `config.json` beside it (`id2label`, `num_labels`, `problem_type`)
 * and its tokenizer in the same folder.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ModtuneError } from '../errors.js';
import { besideModel } from '../data/paths.js';
import type { TaskMeta } from '../export/metadata.js';

export interface HfExport {
  task: TaskMeta;
  /** The config it was read from. */
  configFile: string;
  /** Tokens per input: max_position_embeddings, at most 512. */
  maxLength: number;
}

/** `<model>.config.json` or `config.json` beside the model. */
export function configBeside(modelFile: string): string | undefined {
  const dir = path.dirname(path.resolve(modelFile));
  return [besideModel(modelFile, 'config.json'), path.join(dir, 'config.json')].find((f) => fs.existsSync(f) && fs.statSync(f).isFile());
}

/** The task of an export from its config, checked against its logits' width (when static). */
export function readHfExport(modelFile: string, logitsWidth: number | undefined): HfExport | undefined {
  const configFile = configBeside(modelFile);
  if (!configFile) return undefined;
  let c: Record<string, unknown>;
  try {
    c = JSON.parse(fs.readFileSync(configFile, 'utf8'));
  } catch (e) {
    throw new ModtuneError(`${configFile}: not valid JSON (${(e as Error).message})`);
  }
  if (typeof c !== 'object' || c === null || Array.isArray(c)) throw new ModtuneError(`${configFile}: expected a JSON object (a Hugging Face config.json)`);
  let labels: string[] | null = null;
  if (c.id2label !== undefined) {
    const entries = typeof c.id2label === 'object' && c.id2label !== null && !Array.isArray(c.id2label) ? Object.entries(c.id2label as Record<string, unknown>) : [];
    const byId = new Map(entries.map(([k, v]) => [Number(k), v]));
    const named = Array.from({ length: entries.length }, (_, i) => byId.get(i));
    if (!entries.length || !named.every((l): l is string => typeof l === 'string')) {
      throw new ModtuneError(`${configFile}: field 'id2label' should map "0".."n-1" to label names`);
    }
    labels = named;
  }
  const numLabels = c.num_labels !== undefined ? c.num_labels : labels?.length ?? logitsWidth;
  if (!Number.isSafeInteger(numLabels) || (numLabels as number) < 1) throw new ModtuneError(`${configFile}: field 'num_labels' (or 'id2label') should give a positive number of labels`);
  if (labels && labels.length !== numLabels) throw new ModtuneError(`${configFile}: ${labels.length} labels in 'id2label' but 'num_labels' is ${numLabels}`);
  if (logitsWidth !== undefined && logitsWidth !== numLabels) {
    throw new ModtuneError(`${configFile}: ${numLabels} label${numLabels === 1 ? '' : 's'}, but the logits of ${modelFile} have ${logitsWidth}`);
  }
  const regression = c.problem_type === 'regression' || numLabels === 1;
  const head: TaskMeta['head'] = regression ? { kind: 'regression' } : { kind: 'classification', numLabels: numLabels as number };
  const positions = Number.isSafeInteger(c.max_position_embeddings) && (c.max_position_embeddings as number) > 1 ? (c.max_position_embeddings as number) : 512;
  const name = typeof c.finetuning_task === 'string' && c.finetuning_task ? c.finetuning_task : path.basename(modelFile).replace(/\.onnx$/, '');
  return { task: { name, kind: null, labels: regression ? null : labels, head }, configFile, maxLength: Math.min(512, positions) };
}
