import { ModtuneError } from '../errors.js';
import { DataType } from '../onnx/dtype.js';
import { A, Dim, Graph, Model, cloneModel } from '../onnx/graph.js';
import { int64s } from '../onnx/tensor.js';
import { addClassifier, findTaskHead, reinitDense, replacementNames } from './classifier.js';
import { Rng } from '../util/random.js';
import { DropoutSite, ExistingDropout, dropoutRates, insertDropouts, removeDropouts } from './dropout.js';
import { LABELS, addLoss } from './loss.js';
import { ensureHeadOpset } from './opset.js';
import { Dense, constantValues } from './patterns.js';
import { EncoderStructure, findEncoder } from './structure.js';

export type HeadSpec = { kind: 'classification'; numLabels: number } | { kind: 'regression' };

export interface AttachHeadOptions {
  /** Replace the model's own classification head with a freshly initialised one. */
  newHead?: boolean;
  /** Seed of the new head's initialisation (default 42). */
  seed?: number;
  /** Dropout probability everywhere, overriding the model's config; 0 → no Dropout nodes at all. */
  dropout?: number;
  /** Give the train model's Dropout nodes seed attributes (dropoutSeed + i) for reproducible masks. */
  dropoutSeed?: number;
  /** Name for the model in error messages (e.g. its file). */
  label?: string;
}

export interface HeadedModel {
  /** Inputs: the model's + `labels`; outputs: `loss` (scalar float), `logits`; dropout applied. */
  train: Model;
  /** As `train` without dropout. */
  eval: Model;
  /** The model's inputs; output `logits` only. */
  infer: Model;
  /** reused: the model's own head was kept; params: the head's initializer names (weight, bias). */
  head: { reused: boolean; params: string[] };
}

/** The metadata key that records the task head on every model attachHead returns. */
export const HEAD_METADATA = 'modtune.head';

/**
 * Derive the train/eval/infer models of a sequence-classification or regression task from a
 * BERT-family ONNX model (builder output or exporter output): keep or add the classifier on the
 * pooled output, drop other heads, add the loss, and apply BERT's dropout in the train model.
 */
export function attachHead(model: Model, spec: HeadSpec, opts: AttachHeadOptions = {}): HeadedModel {
  const label = opts.label ?? `model '${model.graph.name}'`;
  const numLabels = checkSpec(spec);
  const rates = dropoutRates(model, opts.dropout);
  if (opts.dropoutSeed !== undefined && !Number.isSafeInteger(opts.dropoutSeed)) {
    throw new ModtuneError(`dropout seed must be an integer, got ${opts.dropoutSeed}`);
  }

  const base = cloneModel(model);
  const g = base.graph;
  uniquifyNodeNames(g);
  g.topologicalSort();
  const existing = removeDropouts(base);
  ensureHeadOpset(base, label);
  g.removeDeadNodes();

  const consts = constantValues(g);
  const enc = findEncoder(g, consts, label);
  const batch = batchDim(g);
  const logitsShape: Dim[] = [batch, numLabels];
  const rng = new Rng(opts.seed ?? 42);

  const own = findTaskHead(g, enc.cls, consts);
  let pooled: string;
  let head: HeadedModel['head'];
  let classifierEntry: string;
  if (own && !opts.newHead) {
    if (own.out.outFeatures !== numLabels) {
      const task = spec.kind === 'regression' ? 'a regression head has 1 output' : `the task has ${numLabels} labels`;
      const has = own.out.outFeatures === 1 ? '1 output' : `${own.out.outFeatures} labels`;
      throw new ModtuneError(
        `${label}: the model's classification head ('${own.out.weight.name}') has ${has} but ${task}; ` +
          `use --new-head to replace it with a freshly initialised head`,
      );
    }
    pooled = own.pooled;
    g.outputs = [{ name: own.out.output, elemType: DataType.FLOAT }];
    g.removeDeadNodes();
    renameValue(g, own.out.output, 'logits', label);
    head = { reused: true, params: [...(own.pre && own.preIsHead ? denseParams(own.pre) : []), ...denseParams(own.out)] };
    classifierEntry = own.out.entry.name;
  } else {
    pooled = own?.pooled ?? enc.pooler?.output ?? enc.cls ?? addClsGather(g, enc.lastHidden);
    const width = own?.out.inFeatures ?? enc.pooler?.dense.outFeatures ?? enc.hiddenSize;
    g.outputs = [{ name: pooled, elemType: DataType.FLOAT }];
    g.removeDeadNodes();
    const params: string[] = [];
    if (own?.pre && own.preIsHead) {
      reinitDense(g, own.pre, rng);
      params.push(...denseParams(own.pre));
    }
    const added = addClassifier(g, pooled, width, numLabels, rng, own ? replacementNames(own.out) : undefined);
    params.push(...added.params);
    head = { reused: false, params };
    classifierEntry = added.nodes[1]!.name;
  }
  g.outputs = [{ name: 'logits', elemType: DataType.FLOAT, shape: logitsShape }];
  // A model that already went through here brings its old labels input along, now unread.
  if (g.isGraphInput(LABELS) && g.consumers(LABELS).length === 0) g.inputs = g.inputs.filter((i) => i.name !== LABELS);
  base.metadata[HEAD_METADATA] = JSON.stringify({ kind: spec.kind, numLabels });

  const family = modelFamily(model);
  const sites = dropoutSites(enc, family);
  sites.push({ name: '/dropout/classifier', value: pooled, consumers: [classifierEntry], rate: 'classifier' });
  if (own?.pre && own.preIsHead && family !== 'distilbert') {
    // RoBERTa/ELECTRA classification heads also drop out the [CLS] vector before their dense layer.
    sites.push({ name: '/dropout/classifier_input', value: own.pre.input, consumers: [own.pre.entry.name], rate: 'classifier' });
  }
  matchExisting(g, sites, existing, opts.dropout);

  const finish = (m: Model): Model => {
    m.graph.topologicalSort();
    pruneValueInfo(m.graph);
    return m;
  };
  const infer = finish(cloneModel(base));
  const evalModel = cloneModel(base);
  addLoss(evalModel.graph, spec.kind, batch, logitsShape);
  const train = cloneModel(base);
  insertDropouts(train.graph, sites, rates, opts.dropoutSeed);
  addLoss(train.graph, spec.kind, batch, logitsShape);
  return { train: finish(train), eval: finish(evalModel), infer, head };
}

/**
 * BERT's dropout in the encoder only (embeddings output, attention probabilities, the dense outputs
 * before each residual), for graphs whose head is not a sequence classifier (masked-LM pre-training).
 * Returns the number of Dropout nodes inserted.
 */
export function addEncoderDropout(model: Model, rates: ReturnType<typeof dropoutRates>, opts: { seed?: number; label?: string } = {}): number {
  const g = model.graph;
  const enc = findEncoder(g, constantValues(g), opts.label ?? `model '${g.name}'`);
  const { inserted } = insertDropouts(g, dropoutSites(enc, modelFamily(model)), rates, opts.seed);
  g.topologicalSort();
  return inserted;
}

function checkSpec(spec: HeadSpec): number {
  if (spec.kind === 'regression') return 1;
  if (spec.kind !== 'classification') throw new ModtuneError(`unknown head kind '${(spec as { kind: unknown }).kind}'; expected classification or regression`);
  if (!Number.isSafeInteger(spec.numLabels) || spec.numLabels < 2) {
    throw new ModtuneError(`a classification head needs an integer number of labels ≥ 2, got ${spec.numLabels}`);
  }
  return spec.numLabels;
}

/**
 * BERT's dropout sites in the encoder: embeddings output, each attention Softmax, and the
 * attention-output and FFN-output projections before their residual Add (DistilBERT has no
 * attention-output dropout). The classifier's sites are added by the caller.
 */
function dropoutSites(enc: EncoderStructure, family: Family): DropoutSite[] {
  const sites: DropoutSite[] = [{ name: '/dropout/embeddings', value: enc.embeddingsLayerNorm.output, consumers: 'all', rate: 'hidden' }];
  enc.softmaxes.forEach((s, i) => {
    sites.push({ name: `/dropout/layer.${i}/attention_probs`, value: s.outputs[0]!, consumers: 'all', rate: 'attention' });
  });
  enc.residuals.forEach((r, j) => {
    if (r.kind === 'attention' && family === 'distilbert') return;
    const where = r.kind === 'attention' ? 'attention_output' : 'output';
    sites.push({ name: `/dropout/layer.${Math.floor(j / 2)}/${where}`, value: r.denseOutput, consumers: [r.add.name], rate: 'hidden' });
  });
  return sites;
}

/**
 * Give each site the model's own Dropout that stood there (same dropped value), so its names are
 * kept; any other Dropout the model had becomes a site of its own where it was, at its own rate
 * unless `override` is given.
 */
function matchExisting(g: Graph, sites: DropoutSite[], existing: ExistingDropout[], override: number | undefined): void {
  const left = [...existing];
  for (const site of sites) {
    const k = left.findIndex((e) => e.input === site.value);
    if (k >= 0) site.existing = left.splice(k, 1)[0];
  }
  const live = new Set<string>([...g.inputs.map((i) => i.name), ...g.nodes.flatMap((n) => n.outputs)]);
  const nodeNames = new Set(g.nodes.map((n) => n.name));
  for (const e of left) {
    const consumers = e.consumers.filter((c) => nodeNames.has(c));
    if (!live.has(e.input) || consumers.length === 0) continue;
    sites.push({ name: e.name, value: e.input, consumers, rate: override ?? e.ratio ?? 'hidden', existing: e });
  }
}

type Family = 'bert' | 'roberta' | 'electra' | 'distilbert';

/** The model family, from the builder's config metadata or the exporter's initializer names. */
function modelFamily(model: Model): Family {
  const m = /"model_type"\s*:\s*"(\w+)"/.exec(model.metadata['modtune.config'] ?? '');
  const fromConfig = m?.[1];
  if (fromConfig === 'distilbert' || fromConfig === 'roberta' || fromConfig === 'electra') return fromConfig;
  for (const k of model.graph.initializers.keys()) {
    if (k.startsWith('distilbert.')) return 'distilbert';
    if (k.startsWith('roberta.')) return 'roberta';
    if (k.startsWith('electra.')) return 'electra';
  }
  return 'bert';
}

function denseParams(d: Dense): string[] {
  return [d.weight.name, ...(d.bias ? [d.bias] : [])];
}

/** Token 0 of the final hidden state, [batch, hidden], for models that don't extract it themselves. */
function addClsGather(g: Graph, lastHidden: string): string {
  const index = g.addInitializer(int64s('/cls/index', [0], []));
  return g.addNode({ opType: 'Gather', name: '/cls/Gather', inputs: [lastHidden, index], attrs: { axis: A.int(1) } }).outputs[0]!;
}

function batchDim(g: Graph): Dim {
  for (const i of g.inputs) {
    if (g.initializers.has(i.name)) continue;
    const d = i.shape?.[0];
    if (d !== undefined && d !== null) return d;
  }
  return 'batch';
}

function renameValue(g: Graph, from: string, to: string, label: string): void {
  if (from === to) return;
  const taken = g.nodes.some((n) => n.outputs.includes(to) || n.inputs.includes(to)) || g.initializers.has(to) || g.isGraphInput(to);
  if (taken) throw new ModtuneError(`${label}: cannot name the head output '${to}': the name is already used in the graph`);
  for (const n of g.nodes) {
    n.outputs = n.outputs.map((o) => (o === from ? to : o));
    n.inputs = n.inputs.map((i) => (i === from ? to : i));
  }
  g.valueInfo.delete(from);
  g.invalidate();
}

function uniquifyNodeNames(g: Graph): void {
  const seen = new Set<string>();
  for (const n of g.nodes) {
    if (!n.name || seen.has(n.name)) n.name = g.uniqueName(n.name || n.opType);
    seen.add(n.name);
  }
}

/** Drop value_info entries of values the graph no longer computes. */
function pruneValueInfo(g: Graph): void {
  const produced = new Set(g.nodes.flatMap((n) => n.outputs));
  for (const k of [...g.valueInfo.keys()]) if (!produced.has(k)) g.valueInfo.delete(k);
}

export { dropoutRates, DEFAULT_DROPOUT } from './dropout.js';
export { lowerDropouts } from './lower-dropout.js';
export type { DropoutRates } from './dropout.js';
export { findEncoder } from './structure.js';
export type { EncoderStructure } from './structure.js';
