/**
 * Mean absolute value of the base model's weights per module and per layer: the paper's account of
 * why LayerNorms transfer (their weights sit far from zero, near 1, while the matrices' entries are
 * small). Computed from the parameters that module discovery places.
 */
import { MODULE_NAMES, type ModelStructure, type ModuleName, type ParameterRole } from '../modules/types.js';

export interface ModuleMagnitude {
  module: ModuleName;
  role: ParameterRole;
  /** Mean |w| over every entry of the module's tensors of this role. */
  meanAbs: number;
  entries: number;
  /** Mean |w| per encoder layer (index = layer); empty outside the encoder. */
  perLayer: Array<number | null>;
}

export function weightMagnitudes(structure: ModelStructure): ModuleMagnitude[] {
  const read = structure.values;
  if (!read) return [];
  const acc = new Map<string, { sum: number; n: number; layers: Array<{ sum: number; n: number }> }>();
  for (const p of structure.parameters) {
    const key = `${p.module}|${p.role}`;
    let a = acc.get(key);
    if (!a) acc.set(key, (a = { sum: 0, n: 0, layers: [] }));
    const v = read(p);
    let s = 0;
    for (let i = 0; i < v.length; i++) s += Math.abs(v[i]!);
    a.sum += s;
    a.n += v.length;
    if (p.layer !== null) {
      const l = (a.layers[p.layer] ??= { sum: 0, n: 0 });
      l.sum += s;
      l.n += v.length;
    }
  }
  const out: ModuleMagnitude[] = [];
  for (const module of MODULE_NAMES) {
    for (const role of ['weight', 'bias'] as const) {
      const a = acc.get(`${module}|${role}`);
      if (!a || a.n === 0) continue;
      const inEncoder = a.layers.length > 0;
      out.push({
        module, role, meanAbs: a.sum / a.n, entries: a.n,
        perLayer: inEncoder ? Array.from({ length: structure.numLayers }, (_, l) => (a.layers[l]?.n ? a.layers[l]!.sum / a.layers[l]!.n : null)) : [],
      });
    }
  }
  return out;
}
