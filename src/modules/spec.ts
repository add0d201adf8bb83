import { ModtuneError } from '../errors.js';
import { MODULE_NAMES, type ModuleName, type ParameterRole } from './types.js';

/**
 * The `--train` selection language.
 *
 *   spec   := term (',' term)*                      union of the terms
 *   term   := target ['@' layers] (':' filter)*
 *   target := a module name | a group name
 *   layers := item (',' item)*                      item: N | N-M | first | last (N-last, first-M too)
 *   filter := weight | bias                         role
 *           | top=P% | top=N | random=P% | random=N  a subset of the matched entries
 *
 * A comma followed by a layer item continues the layer list of the term before it
 * (`query@0,3,key` = query in layers 0 and 3, plus key everywhere).
 */

export const GROUPS: Record<string, readonly ModuleName[]> = {
  layernorm: ['embeddings-layernorm', 'attention-layernorm', 'output-layernorm'],
  attention: ['query', 'key', 'value', 'attention-output'],
  ffn: ['intermediate', 'output'],
  /** BitFit: every bias, LayerNorm betas included (the role filter is applied by the group). */
  bias: MODULE_NAMES,
  full: MODULE_NAMES,
};

export type LayerBound = number | 'first' | 'last';
export interface LayerItem { from: LayerBound; to: LayerBound }
export interface Subset {
  kind: 'top' | 'random';
  /** A share of the matched entries in (0, 1], or an absolute entry count. */
  fraction?: number;
  count?: number;
}
export interface SpecTerm {
  /** The term as written, for messages. */
  text: string;
  target: string;
  layers?: LayerItem[];
  role?: ParameterRole;
  subset?: Subset;
}

const LAYER_ITEM = /^(\d+|first|last)(?:-(\d+|first|last))?$/;

export function parseSpec(spec: string): SpecTerm[] {
  const text = spec.trim();
  if (!text) throw new ModtuneError(`--train: empty selection; expected modules or groups, e.g. 'layernorm', 'attention@11', 'bias,classifier'`);
  const terms: SpecTerm[] = [];
  /** Terms whose layer list may still grow (no filter written after it yet). */
  let open: SpecTerm | undefined;
  for (const raw of text.split(',')) {
    const piece = raw.trim();
    if (!piece) throw new ModtuneError(`--train '${spec}': empty item between commas`);
    const [head, ...filters] = piece.split(':');
    if (open && LAYER_ITEM.test(head!.trim())) {
      open.layers!.push(parseLayerItem(head!.trim(), open.text));
      open.text += `,${piece}`;
      if (filters.length) {
        applyFilters(open, filters);
        open = undefined;
      }
      continue;
    }
    const term = parseTerm(head!.trim(), piece);
    if (filters.length) applyFilters(term, filters);
    terms.push(term);
    open = term.layers && !filters.length ? term : undefined;
  }
  return terms;
}

function parseTerm(head: string, piece: string): SpecTerm {
  const at = head.indexOf('@');
  const target = (at < 0 ? head : head.slice(0, at)).trim().toLowerCase();
  if (!target) throw new ModtuneError(`--train '${piece}': expected a module or group name before '@'`);
  const term: SpecTerm = { text: piece, target };
  if (at >= 0) {
    const layers = head.slice(at + 1).trim();
    if (!layers) throw new ModtuneError(`--train '${piece}': expected layers after '@' (e.g. @11, @0-5, @last, @0,3)`);
    term.layers = [parseLayerItem(layers, piece)];
  }
  return term;
}

function parseLayerItem(s: string, termText: string): LayerItem {
  const m = LAYER_ITEM.exec(s.toLowerCase());
  if (!m) throw new ModtuneError(`--train '${termText}': bad layer '${s}'; expected a layer number, a range like 0-5, first or last`);
  const bound = (b: string): LayerBound => (b === 'first' || b === 'last' ? b : Number(b));
  return { from: bound(m[1]!), to: bound(m[2] ?? m[1]!) };
}

function applyFilters(term: SpecTerm, filters: string[]): void {
  for (const raw of filters) {
    const f = raw.trim().toLowerCase();
    const role = f === 'weight' || f === 'weights' ? 'weight' : f === 'bias' || f === 'biases' ? 'bias' : undefined;
    if (role) {
      if (term.role && term.role !== role) throw new ModtuneError(`--train '${term.text}': both ':weight' and ':bias' given; a term selects one role (or leave it out for both)`);
      term.role = role;
      continue;
    }
    const m = /^(top|random)=(.*)$/.exec(f);
    if (!m) throw new ModtuneError(`--train '${term.text}': unknown filter ':${raw.trim()}'; filters: :weight, :bias, :top=N%, :random=N%, :top=COUNT, :random=COUNT`);
    if (term.subset) throw new ModtuneError(`--train '${term.text}': only one top=/random= per term`);
    term.subset = parseSubset(m[1] as 'top' | 'random', m[2]!, term.text);
  }
}

function parseSubset(kind: 'top' | 'random', s: string, termText: string): Subset {
  const pct = /^(\d+(?:\.\d+)?|\.\d+)%$/.exec(s);
  if (pct) {
    const v = Number(pct[1]);
    if (!(v > 0 && v <= 100)) throw new ModtuneError(`--train '${termText}': ${kind}=${s} must be a percentage in (0, 100]`);
    return { kind, fraction: v / 100 };
  }
  if (/^\d+$/.test(s)) {
    const n = Number(s);
    if (n < 1) throw new ModtuneError(`--train '${termText}': ${kind}=${s} must select at least one entry`);
    return { kind, count: n };
  }
  throw new ModtuneError(`--train '${termText}': ${kind}=${s}: expected a percentage like ${kind}=5% or an entry count like ${kind}=1000`);
}
