import { ModtuneError } from '../errors.js';
import { DataType } from '../onnx/dtype.js';
import { attrInt, attrInts, type Graph, type Model } from '../onnx/graph.js';
import { numel, tensorFloat32, type Tensor } from '../onnx/tensor.js';
import { familyOfPrefix, placeByName, prefixFromName, type NamePlacement } from './names.js';
import { headsFromGraph } from './shape-facts.js';
import { MODULE_NAMES, type ModelFamily, type ModelStructure, type ParameterInfo, type ParameterRole, type UnplacedTensor } from './types.js';
import { accessValues, storageOf, unwrapUpwards, usesOf, type Use } from './uses.js';

/**
 * Discovery: every learnable tensor of a BERT-family ONNX model → (module, layer, role) and its
 * Hugging Face name, whatever the exporter did to it.
 *
 * A tensor is placed by the first of these that works:
 *  1. its own name (HF, DistilBERT, old torch `*.weight_transposed`, TF/Keras variable paths);
 *  2. the scoped name of the node that computes with it (torch >= 1.13 eval exports leave Linear
 *     weights anonymous, `onnx::MatMul_336`, but name the node `/bert/encoder/layer.0/attention/self/query/MatMul`);
 *  3. its neighbour: an anonymous MatMul weight takes the module of the named bias added right
 *     after it, and the other way round (optimum's DistilBERT names its weights `302`);
 *  4. for an embedding table the name does not identify (TF `embeddings/Gather`): the graph input
 *     its Gather indices come from (input_ids → word, token_type_ids → token type, none → position).
 * Role (weight/bias) comes from the name when it says, else from the op that reads it, and the
 * layout (stored = HF^T or not) from MatMul/Gemm operand positions and any Transpose in between.
 */

const FLOAT_TYPES = new Set<number>([DataType.FLOAT, DataType.FLOAT16, DataType.BFLOAT16, DataType.DOUBLE]);

/** Ops whose float inputs past the first are settings, not weights (e.g. Resize scales). */
const SETTING_INPUTS: Record<string, number> = { Resize: 1, Upsample: 1 };

interface Candidate {
  /** The value the graph reads (see ParameterInfo.name). */
  name: string;
  storage: string;
  tensor: Tensor;
  uses: Use[];
  order: number;
  placement?: NamePlacement;
  /** Role fixed by how the tensor was placed (neighbour rule), overriding the graph's guess. */
  role?: ParameterRole;
}

export interface DiscoverOptions {
  /** Names the model in error messages (e.g. its file path). */
  label?: string;
}

export function discoverParameters(model: Model, opts: DiscoverOptions = {}): ModelStructure {
  const graph = model.graph;
  const label = opts.label ?? 'model';
  const candidates = collectCandidates(graph);
  const byName = new Map(candidates.map((c) => [c.name, c]));

  for (const c of candidates) c.placement = placeByName(c.name);
  for (const c of candidates) if (!c.placement) c.placement = placeByScope(c);
  placeByNeighbours(graph, candidates, byName);
  for (const c of candidates) {
    if (c.placement?.module === 'embeddings' && c.placement.stem === null) {
      const table = embeddingTableOf(graph, c);
      if (table) c.placement = { ...c.placement, stem: `embeddings.${table}` };
    }
  }

  const config = configFromMetadata(model);
  const { family, prefix } = familyOf(candidates, config);

  const parameters: ParameterInfo[] = [];
  const unplaced: UnplacedTensor[] = [];
  const taken = new Map<string, string>();
  for (const c of candidates) {
    const shape = [...c.tensor.dims];
    const size = numel(shape);
    const p = c.placement;
    const role = c.role ?? p?.role ?? graphRole(c);
    if (!p || p.stem === null || !role) {
      if (looksLearnable(c)) unplaced.push({ name: c.name, shape, size, reason: unplacedReason(c, p, role) });
      continue;
    }
    const hfName = `${p.prefixed ? `${prefix}.` : ''}${p.stem}.${role}`;
    if (p.kind === 'head') {
      unplaced.push({ name: c.name, hfName, shape, size, reason: `task head '${p.stem}', not a sequence classifier` });
      continue;
    }
    const clash = taken.get(hfName);
    if (clash !== undefined) {
      unplaced.push({ name: c.name, shape, size, reason: `would be ${hfName}, which '${clash}' already is` });
      continue;
    }
    taken.set(hfName, c.name);
    const transposed = storedTransposed(c, role);
    parameters.push({
      name: c.name, hfName, module: p.module!, layer: p.layer, role, shape,
      hfShape: transposed ? [...shape].reverse() : [...shape], transposed, size,
    });
  }

  const encoderParams = parameters.filter((p) => p.layer !== null);
  if (encoderParams.length === 0) throw new ModtuneError(noStructureMessage(graph, label));

  const numLayers = Math.max(...encoderParams.map((p) => p.layer!)) + 1;
  const hiddenSize = hiddenSizeOf(parameters);
  fixLayoutsByShape(parameters, hiddenSize);
  markShared(parameters, graph);
  sortCanonically(parameters, candidates);

  const word = parameters.find((p) => p.hfName.endsWith('embeddings.word_embeddings.weight'));
  const inter = parameters.find((p) => p.module === 'intermediate' && p.role === 'weight');
  const query = parameters.find((p) => p.module === 'query' && p.role === 'weight');
  const numHeads = config.numHeads ?? (query ? headsFromGraph(graph, query.name, hiddenSize) : undefined);
  const totalCount = parameters.reduce((s, p) => s + p.size, 0) + unplaced.reduce((s, u) => s + u.size, 0);

  const storageByParam = new Map(candidates.map((c) => [c.name, c.storage]));
  const values = (p: ParameterInfo): Float32Array => {
    const storage = graph.initializers.get(p.name) ?? graph.initializers.get(storageOf(graph, p.name) ?? storageByParam.get(p.name) ?? '');
    if (!storage) throw new ModtuneError(`${label}: parameter '${p.name}' (${p.hfName}) has no initializer behind it`);
    return tensorFloat32(storage);
  };

  return {
    family, numLayers, hiddenSize,
    ...(numHeads !== undefined ? { numHeads } : {}),
    ...(word ? { vocabSize: word.hfShape[0]! } : {}),
    ...(inter ? { intermediateSize: inter.hfShape[0]! } : {}),
    parameters, unplaced, totalCount, values,
  };
}

// ---- candidates -----------------------------------------------------------------------------

/** Every float initializer of rank >= 1 that the graph computes with, once per parameter it stands for. */
function collectCandidates(graph: Graph): Candidate[] {
  const out: Candidate[] = [];
  for (const [storage, tensor] of graph.initializers) {
    if (!FLOAT_TYPES.has(tensor.dataType) || tensor.dims.length === 0) continue;
    for (const name of accessValues(graph, storage)) {
      out.push({ name, storage, tensor, uses: usesOf(graph, name), order: out.length });
    }
  }
  return out;
}

/** Rule 2: the scoped name of a node that uses the tensor (or of a Transpose/Cast in between). */
function placeByScope(c: Candidate): NamePlacement | undefined {
  for (const u of c.uses) {
    for (const n of [...u.via, u.node]) {
      const p = placeByName(n.name) ?? (n.outputs[0] ? placeByName(n.outputs[0]) : undefined);
      // A node name says nothing about weight vs bias; the role comes from the graph.
      if (p) return { ...p, role: undefined };
    }
  }
  return undefined;
}

/**
 * Rule 3, to a fixed point: a tensor multiplied in (MatMul/Mul/Gemm) and a tensor added right after
 * (Add/Sub) belong to the same module; one placed places the other.
 */
function placeByNeighbours(graph: Graph, candidates: Candidate[], byName: Map<string, Candidate>): void {
  const candidateOf = (value: string | undefined) => (value ? byName.get(unwrapUpwards(graph, value)) : undefined);
  let changed = true;
  while (changed) {
    changed = false;
    for (const c of candidates) {
      if (c.placement) continue;
      for (const u of c.uses) {
        const op = u.node.opType;
        let found: { p: NamePlacement; role: ParameterRole } | undefined;
        if (op === 'Gemm' || op === 'LayerNormalization') {
          // Weight and bias of one node.
          const other = u.node.inputs.map((v) => candidateOf(v)).find((o) => o && o !== c && o.placement);
          const role: ParameterRole | undefined = op === 'Gemm' ? (u.index === 2 ? 'bias' : 'weight') : u.index === 1 ? 'weight' : u.index === 2 ? 'bias' : undefined;
          if (other?.placement && role) found = { p: other.placement, role };
        } else if (op === 'MatMul' || op === 'Mul') {
          // A bias added to this product.
          for (const next of graph.consumers(u.node.outputs[0] ?? '')) {
            if (next.opType !== 'Add' && next.opType !== 'Sub') continue;
            const other = next.inputs.map((v) => candidateOf(v)).find((o) => o && o !== c && o.placement);
            if (other?.placement) { found = { p: other.placement, role: 'weight' }; break; }
          }
        } else if (op === 'Add' || op === 'Sub') {
          // The weight of the product this bias is added to.
          for (const v of u.node.inputs) {
            const prod = graph.producer(v);
            if (!prod || (prod.opType !== 'MatMul' && prod.opType !== 'Mul')) continue;
            const other = prod.inputs.map((x) => candidateOf(x)).find((o) => o && o !== c && o.placement);
            if (other?.placement) { found = { p: other.placement, role: 'bias' }; break; }
          }
        }
        if (found) {
          c.placement = { ...found.p, role: undefined };
          c.role = found.role;
          changed = true;
          break;
        }
      }
    }
  }
}

/** Rule 4: which embedding table a Gather reads, from the graph input its indices come from. */
function embeddingTableOf(graph: Graph, c: Candidate): string | undefined {
  const gather = c.uses.find((u) => u.node.opType === 'Gather' && u.index === 0);
  if (!gather || !gather.node.inputs[1]) return undefined;
  const inputs = upstreamGraphInputs(graph, gather.node.inputs[1]);
  if (inputs.some((n) => /token_type|segment/i.test(n))) return 'token_type_embeddings';
  if (inputs.some((n) => /position/i.test(n))) return 'position_embeddings';
  if (inputs.length > 0) return 'word_embeddings';
  // Indices computed from shapes only (Range, constant position ids).
  return 'position_embeddings';
}

/** Graph inputs whose values (not just shapes) flow into `value`. */
function upstreamGraphInputs(graph: Graph, value: string): string[] {
  const found = new Set<string>();
  const seen = new Set<string>();
  const stack = [value];
  while (stack.length && seen.size < 2000) {
    const v = stack.pop()!;
    if (seen.has(v)) continue;
    seen.add(v);
    if (graph.isGraphInput(v) && !graph.initializers.has(v)) found.add(v);
    const p = graph.producer(v);
    if (!p || p.opType === 'Shape' || p.opType === 'Size') continue;
    for (const i of p.inputs) if (i) stack.push(i);
  }
  return [...found];
}

// ---- roles, layouts ---------------------------------------------------------------------------

function graphRole(c: Candidate): ParameterRole | undefined {
  for (const u of c.uses) {
    switch (u.node.opType) {
      case 'MatMul': case 'Gather': case 'Conv': return 'weight';
      case 'Gemm': return u.index === 2 ? 'bias' : 'weight';
      case 'LayerNormalization': if (u.index === 1) return 'weight'; if (u.index === 2) return 'bias'; break;
      case 'Mul': return 'weight';
      case 'Add': case 'Sub': return 'bias';
    }
  }
  return c.tensor.dims.length >= 2 ? 'weight' : undefined;
}

const swaps2d = (perm: number[] | undefined) => perm === undefined || (perm.length === 2 && perm[0] === 1 && perm[1] === 0);

/**
 * Whether the stored 2-D weight is the transpose of the Hugging Face layout ([out, in] for a
 * Linear, [rows, dim] for an embedding table), from how the first matrix op reads it.
 */
function storedTransposed(c: Candidate, role: ParameterRole): boolean {
  if (c.tensor.dims.length !== 2 || role !== 'weight') return false;
  for (const u of c.uses) {
    const flips = u.via.filter((n) => n.opType === 'Transpose' && swaps2d(attrInts(n, 'perm'))).length % 2 === 1;
    switch (u.node.opType) {
      case 'Gather': return flips;
      // x @ W: W fed is [in, out]. W @ x (first operand): W fed is [out, in].
      case 'MatMul': return u.index === 1 ? !flips : flips;
      case 'Gemm': {
        const trans = attrInt(u.node, u.index === 1 ? 'transB' : 'transA', 0) === 1;
        if (u.index === 1) return trans === flips;
        if (u.index === 0) return trans !== flips;
        break;
      }
    }
  }
  return false;
}

/**
 * The FFN weights are not square, so their HF shape is known ([I, H] in, [H, I] out): a layout
 * the graph got wrong (an unusual operand order) is corrected by it.
 */
function fixLayoutsByShape(params: ParameterInfo[], hidden: number): void {
  for (const p of params) {
    if (p.role !== 'weight' || p.shape.length !== 2 || p.shape[0] === p.shape[1]) continue;
    const wantHiddenAt = p.module === 'intermediate' ? 1 : p.module === 'output' ? 0 : -1;
    if (wantHiddenAt < 0 || p.hfShape[wantHiddenAt] === hidden) continue;
    const flipped = [...p.hfShape].reverse();
    if (flipped[wantHiddenAt] === hidden) {
      p.transposed = !p.transposed;
      p.hfShape = flipped;
    }
  }
}

function hiddenSizeOf(params: ParameterInfo[]): number {
  // Encoder LayerNorms first: ELECTRA's embeddings LayerNorm has the embedding width, not the hidden one.
  for (const m of ['attention-layernorm', 'output-layernorm', 'embeddings-layernorm'] as const) {
    const p = params.find((q) => q.module === m && q.role === 'weight');
    if (p) return p.size;
  }
  const q = params.find((p) => p.module === 'query' && p.role === 'bias');
  return q ? q.size : params.find((p) => p.module === 'query')?.hfShape[0] ?? 0;
}

/** Parameters stored in one tensor (torch's dedup) list each other. */
function markShared(params: ParameterInfo[], graph: Graph): void {
  const groups = new Map<string, ParameterInfo[]>();
  for (const p of params) {
    const s = storageOf(graph, p.name) ?? p.name;
    let g = groups.get(s);
    if (!g) groups.set(s, (g = []));
    g.push(p);
  }
  for (const g of groups.values()) {
    if (g.length < 2) continue;
    for (const p of g) p.sharedBy = g.filter((q) => q !== p).map((q) => q.name);
  }
}

const TABLES = ['word_embeddings', 'position_embeddings', 'token_type_embeddings', 'embeddings_project'];
/** Embedding tables in the order HF lists them. */
const tableRank = (p: ParameterInfo) => (p.module === 'embeddings' ? TABLES.findIndex((t) => p.hfName.includes(`.${t}.`)) : 0);

/** Embeddings, then layer by layer, then pooler and classifier; module order inside; weight before bias. */
function sortCanonically(params: ParameterInfo[], candidates: Candidate[]): void {
  const orderOf = new Map(candidates.map((c) => [c.name, c.order]));
  // A module made of several Linears (RoBERTa's classifier.dense + classifier.out_proj) keeps
  // each Linear's weight and bias together, in graph order.
  const stemOf = (p: ParameterInfo) => p.hfName.slice(0, p.hfName.lastIndexOf('.'));
  const stemOrder = new Map<string, number>();
  for (const p of params) {
    const o = orderOf.get(p.name)!;
    const s = stemOf(p);
    if (!stemOrder.has(s) || stemOrder.get(s)! > o) stemOrder.set(s, o);
  }
  const section = (p: ParameterInfo) => (p.layer !== null ? 1 : p.module === 'pooler' ? 2 : p.module === 'classifier' ? 3 : 0);
  params.sort((a, b) =>
    section(a) - section(b) ||
    (a.layer ?? -1) - (b.layer ?? -1) ||
    MODULE_NAMES.indexOf(a.module) - MODULE_NAMES.indexOf(b.module) ||
    tableRank(a) - tableRank(b) ||
    stemOrder.get(stemOf(a))! - stemOrder.get(stemOf(b))! ||
    (a.role === b.role ? 0 : a.role === 'weight' ? -1 : 1) ||
    orderOf.get(a.name)! - orderOf.get(b.name)!);
}

// ---- family, config -----------------------------------------------------------------------------

interface ConfigFacts { modelType?: string; numHeads?: number }

/** The builder stores the HF config JSON in metadata `modtune.config`. */
function configFromMetadata(model: Model): ConfigFacts {
  const raw = model.metadata?.['modtune.config'];
  if (!raw) return {};
  try {
    const j = JSON.parse(raw) as Record<string, unknown>;
    const heads = j.num_attention_heads ?? j.n_heads;
    return {
      modelType: typeof j.model_type === 'string' ? j.model_type : undefined,
      numHeads: typeof heads === 'number' && Number.isInteger(heads) && heads > 0 ? heads : undefined,
    };
  } catch {
    return {};
  }
}

function familyOf(candidates: Candidate[], config: ConfigFacts): { family: ModelFamily; prefix: string } {
  if (candidates.some((c) => c.placement?.distil)) return { family: 'distilbert', prefix: 'distilbert' };
  const known = familyOfPrefix(config.modelType);
  if (known) return { family: known, prefix: known };
  const votes = new Map<string, number>();
  for (const c of candidates) {
    if (!c.placement?.prefixed) continue;
    const p = prefixFromName(c.name) ?? (c.uses[0] ? prefixFromName(c.uses[0].node.name) : undefined);
    if (p) votes.set(p, (votes.get(p) ?? 0) + 1);
  }
  const best = [...votes].sort((a, b) => b[1] - a[1])[0]?.[0];
  const family = familyOfPrefix(best);
  if (family) return { family, prefix: best! };
  // Unprefixed HF names (a bare BertModel export) or an unknown prefix: BERT naming, unknown family.
  return { family: 'unknown-bert-like', prefix: best ?? 'bert' };
}

// ---- reporting ------------------------------------------------------------------------------

/** Float tensors of >= 2 entries that some op computes with look learnable; size-1 ones are constants (sqrt(d), eps). */
function looksLearnable(c: Candidate): boolean {
  if (numel(c.tensor.dims) < 2) return false;
  return c.uses.some((u) => !(u.node.opType in SETTING_INPUTS && u.index >= SETTING_INPUTS[u.node.opType]!));
}

function unplacedReason(c: Candidate, p: NamePlacement | undefined, role: ParameterRole | undefined): string {
  const users = c.uses.slice(0, 3).map((u) => `${u.node.opType} '${u.node.name}'`).join(', ') || 'nothing';
  if (p && p.stem === null) return `under 'embeddings' but read by ${users}, not an embedding lookup`;
  if (p && !role) return `in ${p.stem} but neither name nor graph says weight or bias`;
  return `no module found: name not recognised, read by ${users}`;
}

function noStructureMessage(graph: Graph, label: string): string {
  let ln = 0;
  let reduceMeans = 0;
  let softmax = 0;
  for (const n of graph.nodes) {
    if (/LayerNormalization$/.test(n.opType)) ln++;
    else if (n.opType === 'ReduceMean') reduceMeans++;
    else if (n.opType === 'Softmax' || n.opType === 'Attention' || n.opType === 'MultiHeadAttention') softmax++;
  }
  ln += Math.floor(reduceMeans / 2);
  if (ln === 0 && softmax === 0) {
    return `${label}: no BERT structure found: looked for LayerNorms (LayerNormalization nodes or ReduceMean/Sub/Pow/Sqrt/Div chains) and attention Softmax nodes, found neither`;
  }
  return `${label}: no BERT encoder parameters found: the graph has ${ln} LayerNorm(s) and ${softmax} attention Softmax node(s), ` +
    `but no initializer could be placed in an encoder layer (looked for Hugging Face, torch-scoped, DistilBERT and TF names, and named biases next to anonymous weights)`;
}
