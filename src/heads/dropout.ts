import { ModtuneError } from '../errors.js';
import { DataType } from '../onnx/dtype.js';
import { A, Attr, Graph, Model, attrFloat, isOnnxOp, opsetVersion } from '../onnx/graph.js';
import { makeTensor, scalarF32 } from '../onnx/tensor.js';
import { constantScalar } from './patterns.js';

/** Dropout probabilities of a BERT model, by where they apply. */
export interface DropoutRates {
  /** Embeddings output and the two dense outputs of each layer (`hidden_dropout_prob`). */
  hidden: number;
  /** Attention probabilities (`attention_probs_dropout_prob`). */
  attention: number;
  /** Before the classifier (`classifier_dropout`, null → `hidden_dropout_prob`). */
  classifier: number;
}

export const DEFAULT_DROPOUT = 0.1;

function checkRate(v: unknown, where: string): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || v >= 1) {
    throw new ModtuneError(`${where}: dropout probability must be a number in [0, 1), got ${JSON.stringify(v)}`);
  }
  return v;
}

/**
 * The rates to train with: `override` for all when given, else the model's `modtune.config`
 * metadata (Hugging Face config JSON; DistilBERT's own keys understood), else 0.1.
 */
export function dropoutRates(model: Model, override?: number): DropoutRates {
  if (override !== undefined) {
    const r = checkRate(override, 'dropout option');
    return { hidden: r, attention: r, classifier: r };
  }
  const text = model.metadata['modtune.config'];
  if (text === undefined) return { hidden: DEFAULT_DROPOUT, attention: DEFAULT_DROPOUT, classifier: DEFAULT_DROPOUT };
  let cfg: Record<string, unknown>;
  try {
    const parsed: unknown = JSON.parse(text);
    if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('not an object');
    cfg = parsed as Record<string, unknown>;
  } catch (e) {
    throw new ModtuneError(`model metadata 'modtune.config' is not a JSON object (${(e as Error).message})`);
  }
  const field = (key: string, dflt: number): number =>
    cfg[key] === undefined ? dflt : checkRate(cfg[key], `model metadata 'modtune.config' field '${key}'`);
  if (cfg.model_type === 'distilbert') {
    const hidden = field('dropout', DEFAULT_DROPOUT);
    return { hidden, attention: field('attention_dropout', DEFAULT_DROPOUT), classifier: field('seq_classif_dropout', hidden) };
  }
  const hidden = field('hidden_dropout_prob', DEFAULT_DROPOUT);
  const attention = field('attention_probs_dropout_prob', DEFAULT_DROPOUT);
  const classifier = cfg.classifier_dropout === null ? hidden : field('classifier_dropout', hidden);
  return { hidden, attention, classifier };
}

/** A Dropout node the model came with, as it was before being taken out. */
export interface ExistingDropout {
  name: string;
  input: string;
  output: string;
  /** Its own ratio, when readable. */
  ratio?: number;
  /** Names of the nodes that read its output. */
  consumers: string[];
}

/**
 * Take every Dropout out of `g` (its consumers read its input instead) and say where they were.
 * Works for every Dropout version (ratio as attribute before opset 12, as input from 12).
 */
export function removeDropouts(model: Model): ExistingDropout[] {
  const g = model.graph;
  const opset = opsetVersion(model) ?? 0;
  const found: ExistingDropout[] = [];
  for (const n of [...g.nodes]) {
    if (!isOnnxOp(n, 'Dropout')) continue;
    const [input, output, mask] = [n.inputs[0], n.outputs[0], n.outputs[1]];
    if (!input || !output) throw new ModtuneError(`node '${n.name}' (Dropout): missing data input or output`);
    if (mask && (g.consumers(mask).length > 0 || g.isGraphOutput(mask))) {
      throw new ModtuneError(`node '${n.name}' (Dropout): its mask output '${mask}' is used by the graph; cannot take the Dropout out`);
    }
    const ratio = opset < 12 ? attrFloat(n, 'ratio', 0.5) : n.inputs[1] ? constantScalar(g, n.inputs[1]) : 0.5;
    found.push({ name: n.name, input, output, ratio, consumers: g.consumers(output).map((c) => c.name) });
    if (g.isGraphOutput(output)) {
      // Keep the output's name: an Identity stands where the Dropout was.
      Object.assign(n, { opType: 'Identity', inputs: [input], outputs: [output], attrs: {} });
      g.invalidate();
    } else {
      g.replaceUses(output, input);
      g.removeNodes([n]);
    }
    g.valueInfo.delete(output);
    if (mask) g.valueInfo.delete(mask);
  }
  return found;
}

/** A place where training applies dropout. */
export interface DropoutSite {
  /** Node name to give the Dropout. */
  name: string;
  /** The value dropped out. */
  value: string;
  /** Names of the nodes that must read the dropped-out value, or 'all' readers of `value`. */
  consumers: string[] | 'all';
  /** Which configured rate applies, or a fixed rate. */
  rate: keyof DropoutRates | number;
  /** The model's own Dropout that stood here: its node and output names are kept. */
  existing?: ExistingDropout;
}

export interface InsertedDropouts {
  inserted: number;
  reused: number;
}

/**
 * Add an opset-12+ Dropout (data, ratio, training_mode=true) at every site whose rate is above 0.
 * With `seed`, node i gets the attribute seed = seed + i (distinct streams, reproducible runs).
 */
export function insertDropouts(g: Graph, sites: DropoutSite[], rates: DropoutRates, seed?: number): InsertedDropouts {
  const ratioInit = new Map<number, string>();
  let trainingMode: string | undefined;
  let inserted = 0;
  let reused = 0;
  for (const site of sites) {
    const rate = typeof site.rate === 'number' ? site.rate : rates[site.rate];
    if (!(rate > 0)) continue;
    let ratio = ratioInit.get(rate);
    if (!ratio) ratioInit.set(rate, (ratio = g.addInitializer(scalarF32(`dropout_ratio_${rate}`, rate))));
    trainingMode ??= g.addInitializer(makeTensor('dropout_training_mode', DataType.BOOL, [], new Uint8Array([1])));
    const readers = site.consumers === 'all'
      ? g.consumers(site.value)
      : g.nodes.filter((n) => (site.consumers as string[]).includes(n.name) && n.inputs.includes(site.value));
    if (readers.length === 0) continue;
    const output = site.existing ? site.existing.output : g.uniqueName(`${site.name}_output_0`);
    const attrs: Record<string, Attr> = seed === undefined ? {} : { seed: A.int(seed + inserted + reused) };
    g.addNode({ opType: 'Dropout', name: site.existing?.name ?? site.name, inputs: [site.value, ratio, trainingMode], outputs: [output], attrs });
    for (const r of readers) for (let i = 0; i < r.inputs.length; i++) if (r.inputs[i] === site.value) r.inputs[i] = output;
    g.invalidate();
    if (site.existing) reused++;
    else inserted++;
  }
  return { inserted, reused };
}
