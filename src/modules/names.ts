import type { ModuleName, ParameterRole } from './types.js';

/**
 * Reading module paths out of the names exporters leave behind: Hugging Face parameter names
 * (`bert.encoder.layer.3.attention.self.query.weight`), torch scoped node names
 * (`/bert/encoder/layer.3/attention/self/query/MatMul`), old torch names (`...query.weight_transposed`),
 * DistilBERT names (`transformer.layer.3.attention.q_lin`) and Keras/TF variable paths
 * (`tf_bert_for_question_answering/bert/encoder/layer_._3/attention/self/query/BiasAdd/ReadVariableOp/resource:0`).
 */

/** Where a name says a tensor belongs. `stem` is the canonical Hugging Face module path without the model prefix. */
export interface NamePlacement {
  /** A selectable module, or a task head that is not a sequence classifier. */
  kind: 'module' | 'head';
  module?: ModuleName;
  layer: number | null;
  /** Null when the name only says "an embedding table" (TF `embeddings/Gather`): the graph decides which. */
  stem: string | null;
  /** Whether the Hugging Face name carries the model prefix (`bert.`) before `stem`. */
  prefixed: boolean;
  /** DistilBERT naming scheme. */
  distil: boolean;
  /** Role spelled in the name itself (`weight`, `bias`, `gamma`, `beta`, `kernel`...), if any. */
  role?: ParameterRole;
}

/**
 * One normal form for every naming scheme: dots between components, torch `onnx::` and TF `:0...`
 * suffixes dropped, TF `layer_._3` / `layer_3` written `layer.3`.
 */
export function normalizePath(raw: string): string {
  let s = raw.replace(/^onnx::/, '');
  s = s.replace(/:\d+[^/]*$/, '');
  s = s.replace(/\//g, '.').replace(/^\.+/, '').replace(/\.+$/, '');
  s = s.replace(/(^|\.)layer_\._(\d+)(?=\.|$)/g, '$1layer.$2');
  s = s.replace(/(^|\.)layer_(\d+)(?=\.|$)/g, '$1layer.$2');
  return s;
}

interface Rule {
  re: RegExp;
  place: (m: RegExpExecArray) => Omit<NamePlacement, 'role'>;
}

const B = '(?:^|\\.)'; // component boundary before
const E = '(?=\\.|$)'; // component boundary after
const LN = '(?:LayerNorm|layer_norm|layernorm)';

const enc = (module: ModuleName, stem: (n: string) => string) => (m: RegExpExecArray) => ({
  kind: 'module' as const, module, layer: Number(m[1]), stem: stem(m[1]!), prefixed: true, distil: false,
});
const distil = (module: ModuleName, stem: (n: string) => string) => (m: RegExpExecArray) => ({
  kind: 'module' as const, module, layer: Number(m[1]), stem: stem(m[1]!), prefixed: true, distil: true,
});
const fixed = (kind: 'module' | 'head', module: ModuleName | undefined, stem: string | null, prefixed: boolean, isDistil = false) => () => ({
  kind, module, layer: null, stem, prefixed, distil: isDistil,
});

const QKV: Record<string, ModuleName> = { query: 'query', key: 'key', value: 'value', q_lin: 'query', k_lin: 'key', v_lin: 'value', out_lin: 'attention-output' };

/** Most specific first. */
const RULES: Rule[] = [
  { re: new RegExp(`${B}encoder\\.layer\\.(\\d+)\\.attention\\.self\\.(query|key|value)${E}`),
    place: (m) => enc(QKV[m[2]!]!, (n) => `encoder.layer.${n}.attention.self.${m[2]}`)(m) },
  { re: new RegExp(`${B}encoder\\.layer\\.(\\d+)\\.attention\\.output\\.dense${E}`),
    place: enc('attention-output', (n) => `encoder.layer.${n}.attention.output.dense`) },
  { re: new RegExp(`${B}encoder\\.layer\\.(\\d+)\\.attention\\.output\\.${LN}${E}`),
    place: enc('attention-layernorm', (n) => `encoder.layer.${n}.attention.output.LayerNorm`) },
  { re: new RegExp(`${B}encoder\\.layer\\.(\\d+)\\.intermediate\\.dense${E}`),
    place: enc('intermediate', (n) => `encoder.layer.${n}.intermediate.dense`) },
  { re: new RegExp(`${B}encoder\\.layer\\.(\\d+)\\.output\\.dense${E}`),
    place: enc('output', (n) => `encoder.layer.${n}.output.dense`) },
  { re: new RegExp(`${B}encoder\\.layer\\.(\\d+)\\.output\\.${LN}${E}`),
    place: enc('output-layernorm', (n) => `encoder.layer.${n}.output.LayerNorm`) },
  { re: new RegExp(`${B}transformer\\.layer\\.(\\d+)\\.attention\\.(q_lin|k_lin|v_lin|out_lin)${E}`),
    place: (m) => distil(QKV[m[2]!]!, (n) => `transformer.layer.${n}.attention.${m[2]}`)(m) },
  { re: new RegExp(`${B}transformer\\.layer\\.(\\d+)\\.sa_layer_norm${E}`),
    place: distil('attention-layernorm', (n) => `transformer.layer.${n}.sa_layer_norm`) },
  { re: new RegExp(`${B}transformer\\.layer\\.(\\d+)\\.ffn\\.lin1${E}`),
    place: distil('intermediate', (n) => `transformer.layer.${n}.ffn.lin1`) },
  { re: new RegExp(`${B}transformer\\.layer\\.(\\d+)\\.ffn\\.lin2${E}`),
    place: distil('output', (n) => `transformer.layer.${n}.ffn.lin2`) },
  { re: new RegExp(`${B}transformer\\.layer\\.(\\d+)\\.output_layer_norm${E}`),
    place: distil('output-layernorm', (n) => `transformer.layer.${n}.output_layer_norm`) },
  // Task heads that are not a sequence classifier: recognised, reported, never selectable.
  { re: new RegExp(`${B}cls\\.predictions\\.transform\\.(dense|${LN})${E}`),
    place: (m) => fixed('head', undefined, `cls.predictions.transform.${m[1] === 'dense' ? 'dense' : 'LayerNorm'}`, false)() },
  { re: new RegExp(`${B}cls\\.predictions\\.decoder${E}`), place: fixed('head', undefined, 'cls.predictions.decoder', false) },
  { re: new RegExp(`${B}cls\\.predictions${E}`), place: fixed('head', undefined, 'cls.predictions', false) },
  { re: new RegExp(`${B}cls\\.seq_relationship${E}`), place: fixed('head', undefined, 'cls.seq_relationship', false) },
  { re: new RegExp(`${B}qa_outputs${E}`), place: fixed('head', undefined, 'qa_outputs', false) },
  { re: new RegExp(`${B}lm_head\\.(dense|layer_norm|decoder)${E}`), place: (m) => fixed('head', undefined, `lm_head.${m[1]}`, false)() },
  { re: new RegExp(`${B}lm_head${E}`), place: fixed('head', undefined, 'lm_head', false) },
  { re: new RegExp(`${B}(vocab_transform|vocab_layer_norm|vocab_projector)${E}`), place: (m) => fixed('head', undefined, m[1]!, false)() },
  { re: new RegExp(`${B}(generator_predictions\\.(?:dense|LayerNorm)|generator_lm_head|discriminator_predictions\\.(?:dense_prediction|dense))${E}`),
    place: (m) => fixed('head', undefined, m[1]!, false)() },
  // Embeddings.
  { re: new RegExp(`${B}embeddings\\.(word_embeddings|position_embeddings|token_type_embeddings)${E}`),
    place: (m) => fixed('module', 'embeddings', `embeddings.${m[1]}`, true)() },
  { re: new RegExp(`${B}embeddings\\.${LN}${E}`), place: fixed('module', 'embeddings-layernorm', 'embeddings.LayerNorm', true) },
  { re: new RegExp(`${B}embeddings_project${E}`), place: fixed('module', 'embeddings', 'embeddings_project', true) },
  // Pooler and classifier.
  { re: new RegExp(`${B}pooler\\.dense${E}`), place: fixed('module', 'pooler', 'pooler.dense', true) },
  { re: new RegExp(`${B}pre_classifier${E}`), place: fixed('module', 'pooler', 'pre_classifier', false, true) },
  { re: new RegExp(`${B}classifier\\.(dense|out_proj)${E}`), place: (m) => fixed('module', 'classifier', `classifier.${m[1]}`, false)() },
  { re: new RegExp(`${B}classifier${E}`), place: fixed('module', 'classifier', 'classifier', false) },
  // "Some embedding table" (TF names the word table `embeddings/Gather`): which one is up to the graph.
  { re: new RegExp(`${B}embeddings${E}`), place: fixed('module', 'embeddings', null, true) },
];

const WEIGHT_WORDS = new Set(['weight', 'kernel', 'gamma', 'weight_transposed']);
const BIAS_WORDS = new Set(['bias', 'beta']);

/** The role a name spells out in its last component, if it does. */
export function roleFromName(normalized: string): ParameterRole | undefined {
  const last = normalized.slice(normalized.lastIndexOf('.') + 1);
  if (WEIGHT_WORDS.has(last)) return 'weight';
  if (BIAS_WORDS.has(last)) return 'bias';
  return undefined;
}

/** Where the name says the tensor belongs, or undefined when it says nothing we know. */
export function placeByName(raw: string): NamePlacement | undefined {
  const s = normalizePath(raw);
  if (!s) return undefined;
  for (const rule of RULES) {
    const m = rule.re.exec(s);
    if (m) return { ...rule.place(m), role: roleFromName(s) };
  }
  return undefined;
}

/** Model prefixes this project knows, mapped to their family. */
const PREFIXES: Record<string, 'bert' | 'roberta' | 'electra' | 'distilbert'> = {
  bert: 'bert', roberta: 'roberta', electra: 'electra', distilbert: 'distilbert',
};

/**
 * The model prefix a name carries before the base-model part (`bert.embeddings...`,
 * `/roberta/encoder/...`, `tf_bert_for_.../bert/encoder/...`), if any.
 */
export function prefixFromName(raw: string): string | undefined {
  const s = normalizePath(raw);
  const m = /(?:^|\.)([A-Za-z][\w-]*)\.(?:embeddings|encoder|transformer|pooler|embeddings_project)(?=\.|$)/.exec(s);
  return m ? m[1] : undefined;
}

export function familyOfPrefix(prefix: string | undefined): 'bert' | 'roberta' | 'electra' | 'distilbert' | undefined {
  return prefix === undefined ? undefined : PREFIXES[prefix];
}
