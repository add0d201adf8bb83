import { ModtuneError } from '../errors.js';
import { Rng } from '../util/random.js';
import { countOnes, randomMasks, topMagnitudeMasks } from './masks.js';
import { GROUPS, parseSpec, type LayerBound, type SpecTerm } from './spec.js';
import { MODULE_NAMES, type ModelStructure, type ModuleName, type ParameterInfo, type Selection } from './types.js';

export interface SelectOptions {
  /** Seed of `random=` subsets (default 0). */
  seed?: number;
  /** Keep the classifier head frozen (by default every selection trains it too). */
  freezeHead?: boolean;
  /** Parameter values in stored layout, for `top=`; defaults to the structure's own reader. */
  values?: (p: ParameterInfo) => Float32Array;
}

/**
 * Resolve a `--train` spec (see spec.ts) against a discovered model. Terms are united; a parameter
 * selected whole by one term and partially by another trains whole; two partial terms OR their
 * masks. `top=`/`random=` pick from the entries of all tensors the term matches taken together
 * (global, so `layernorm:top=5%` may favour gammas over betas), never per tensor. The classifier
 * is added unless `freezeHead`. Every term must match something: a typo or a module the model
 * lacks is an error, not a silent no-op.
 */
export function selectParameters(structure: ModelStructure, spec: string, opts: SelectOptions = {}): Selection {
  const terms = parseSpec(spec);
  const whole = new Set<ParameterInfo>();
  const masks = new Map<string, Uint8Array>();
  const rng = new Rng(opts.seed ?? 0);

  for (const term of terms) {
    const matched = matchTerm(structure, term, opts);
    if (!term.subset) {
      for (const p of matched) whole.add(p);
      continue;
    }
    const total = matched.reduce((s, p) => s + p.size, 0);
    const k = term.subset.fraction !== undefined ? Math.max(1, Math.round(term.subset.fraction * total)) : term.subset.count!;
    if (k > total) {
      throw new ModtuneError(`--train '${term.text}': asks for ${k.toLocaleString('en-US')} entries but the matched tensors have ${total.toLocaleString('en-US')}`);
    }
    let picked: Map<string, Uint8Array>;
    if (term.subset.kind === 'top') {
      const read = opts.values ?? structure.values;
      if (!read) throw new ModtuneError(`--train '${term.text}': top= needs the parameter values, and none were given`);
      picked = topMagnitudeMasks(matched.map((p) => ({ name: p.name, values: checkedValues(read, p) })), k);
    } else {
      picked = randomMasks(matched.map((p) => ({ name: p.name, size: p.size })), k, rng);
    }
    for (const [name, m] of picked) {
      const prev = masks.get(name);
      if (prev) for (let i = 0; i < m.length; i++) prev[i] = prev[i]! | m[i]!;
      else masks.set(name, m);
    }
  }

  if (!opts.freezeHead) for (const p of structure.parameters) if (p.module === 'classifier') whole.add(p);

  const byName = new Map(structure.parameters.map((p) => [p.name, p]));
  for (const [name, m] of [...masks]) {
    const p = byName.get(name)!;
    const ones = countOnes(m);
    if (whole.has(p) || ones === m.length) {
      masks.delete(name);
      whole.add(p);
    } else if (ones === 0) {
      masks.delete(name);
    }
  }

  const parameters = structure.parameters.filter((p) => whole.has(p) || masks.has(p.name));
  let trainableCount = 0;
  for (const p of parameters) trainableCount += masks.has(p.name) ? countOnes(masks.get(p.name)!) : p.size;
  return { spec, parameters, masks, trainableCount, totalCount: structure.totalCount };
}

function checkedValues(read: (p: ParameterInfo) => Float32Array, p: ParameterInfo): Float32Array {
  const v = read(p);
  if (v.length !== p.size) throw new ModtuneError(`values of '${p.hfName}': ${v.length} entries, expected ${p.size}`);
  return v;
}

/** The parameters one term selects; errors say what exists. */
function matchTerm(structure: ModelStructure, term: SpecTerm, opts: SelectOptions): ParameterInfo[] {
  const modules = modulesOf(term.target);
  if (term.target === 'classifier' && opts.freezeHead) {
    throw new ModtuneError(`--train '${term.text}' selects the classifier, but the head is frozen (--freeze-head); drop one of them`);
  }
  const role = term.target === 'bias' ? 'bias' : term.role;
  if (term.target === 'bias' && term.role === 'weight') throw new ModtuneError(`--train '${term.text}': the 'bias' group has no weights`);
  const layers = term.layers ? resolveLayers(structure, term) : undefined;
  const matched = structure.parameters.filter((p) =>
    modules.has(p.module) &&
    (!layers || (p.layer !== null && layers.has(p.layer))) &&
    (!role || p.role === role) &&
    !(opts.freezeHead && p.module === 'classifier'));
  if (matched.length === 0) throw new ModtuneError(emptyMessage(structure, term, modules));
  return matched;
}

export function modulesOf(target: string): Set<ModuleName> {
  const group = GROUPS[target];
  if (group) return new Set(group);
  if ((MODULE_NAMES as readonly string[]).includes(target)) return new Set([target as ModuleName]);
  const suggestion = closest(target, [...MODULE_NAMES, ...Object.keys(GROUPS)]);
  throw new ModtuneError(
    `unknown module '${target}'${suggestion ? ` (did you mean '${suggestion}'?)` : ''}; ` +
    `modules: ${MODULE_NAMES.join(', ')}; groups: ${Object.keys(GROUPS).join(', ')}`);
}

function resolveLayers(structure: ModelStructure, term: SpecTerm): Set<number> {
  const last = structure.numLayers - 1;
  const value = (b: LayerBound) => (b === 'first' ? 0 : b === 'last' ? last : b);
  const out = new Set<number>();
  for (const item of term.layers!) {
    const from = value(item.from);
    const to = value(item.to);
    for (const l of [from, to]) {
      if (l > last) throw new ModtuneError(`layer ${l} out of range in '${term.text}': model has layers 0-${last}`);
    }
    if (from > to) throw new ModtuneError(`--train '${term.text}': layer range ${from}-${to} runs backwards`);
    for (let l = from; l <= to; l++) out.add(l);
  }
  return out;
}

function emptyMessage(structure: ModelStructure, term: SpecTerm, modules: Set<ModuleName>): string {
  const present = MODULE_NAMES.filter((m) => structure.parameters.some((p) => p.module === m));
  const wanted = [...modules].filter((m) => present.includes(m));
  let why: string;
  if (wanted.length === 0) why = `this model has no ${[...modules].join('/')}`;
  else if (term.layers && wanted.every((m) => structure.parameters.every((p) => p.module !== m || p.layer === null))) {
    why = `${wanted.join('/')} ${wanted.length > 1 ? 'are' : 'is'} outside the encoder layers; drop the '@...'`;
  } else why = 'no parameter has that layer and role';
  return `--train '${term.text}' selects no parameters: ${why}; this model has: ${present.join(', ')} (layers 0-${structure.numLayers - 1})`;
}

/** The candidate within edit distance 2, if exactly one is closest. */
function closest(word: string, options: string[]): string | undefined {
  let best: string | undefined;
  let bestD = 3;
  for (const o of options) {
    const d = editDistance(word, o);
    if (d < bestD) {
      best = o;
      bestD = d;
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length]!;
}
