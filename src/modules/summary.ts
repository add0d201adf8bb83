import { MODULE_NAMES, type ModelStructure, type ModuleName, type Selection } from './types.js';
import { countOnes } from './masks.js';

/** Parameter counts per module and layer, and what a selection trains of them. */

export interface ModuleRow {
  module: ModuleName;
  total: number;
  /** Entries per encoder layer (index = layer); empty for modules outside the encoder. */
  perLayer: number[];
  /** Trainable entries (with a selection). */
  trainable?: number;
  /** Per layer: 'all' | 'some' | 'none' trainable (with a selection). */
  trainablePerLayer?: ('all' | 'some' | 'none')[];
}

export function moduleTable(structure: ModelStructure, selection?: Selection): ModuleRow[] {
  const rows: ModuleRow[] = [];
  const trainableOf = new Map<string, number>();
  if (selection) {
    for (const p of selection.parameters) {
      const m = selection.masks.get(p.name);
      trainableOf.set(p.name, m ? countOnes(m) : p.size);
    }
  }
  for (const module of MODULE_NAMES) {
    const params = structure.parameters.filter((p) => p.module === module);
    if (params.length === 0) continue;
    const inEncoder = params.some((p) => p.layer !== null);
    const row: ModuleRow = {
      module,
      total: params.reduce((s, p) => s + p.size, 0),
      perLayer: inEncoder ? Array.from({ length: structure.numLayers }, (_, l) => params.filter((p) => p.layer === l).reduce((s, p) => s + p.size, 0)) : [],
    };
    if (selection) {
      row.trainable = params.reduce((s, p) => s + (trainableOf.get(p.name) ?? 0), 0);
      if (inEncoder) {
        row.trainablePerLayer = row.perLayer.map((size, l) => {
          const t = params.filter((p) => p.layer === l).reduce((s, p) => s + (trainableOf.get(p.name) ?? 0), 0);
          return t === 0 ? 'none' : t === size ? 'all' : 'some';
        });
      }
    }
    rows.push(row);
  }
  return rows;
}

/** 109482240 → "109,482,240". */
export function formatCount(n: number): string {
  return n.toLocaleString('en-US');
}

/** A share in percent with enough digits to tell small selections apart: 0.035%, 12.50%. */
export function formatShare(part: number, total: number): string {
  if (total <= 0) return '-';
  const pct = (100 * part) / total;
  if (pct === 0) return '0%';
  if (pct < 0.001) return '<0.001%';
  return pct < 1 ? `${pct.toFixed(3)}%` : `${pct.toFixed(2)}%`;
}

/** 589824 → "590k": table cells, where exact counts would not fit. */
export function formatCompact(n: number): string {
  if (n < 10_000) return formatCount(n);
  if (n < 1_000_000) return `${Math.round(n / 1000)}k`;
  return `${(n / 1_000_000).toPrecision(3).replace(/\.?0+$/, '')}M`;
}

/** One line of facts about the model: family and shape. */
export function describeShape(s: ModelStructure): string {
  const parts = [`family: ${s.family}`, `layers: ${s.numLayers}`, `hidden: ${s.hiddenSize}`];
  if (s.numHeads !== undefined) parts.push(`heads: ${s.numHeads}`);
  if (s.intermediateSize !== undefined) parts.push(`ffn: ${formatCount(s.intermediateSize)}`);
  if (s.vocabSize !== undefined) parts.push(`vocab: ${formatCount(s.vocabSize)}`);
  return parts.join('   ');
}

/** `trainable: 38,400 of 109,482,240 (0.035%)` */
export function describeTrainable(sel: Selection): string {
  return `trainable: ${formatCount(sel.trainableCount)} of ${formatCount(sel.totalCount)} (${formatShare(sel.trainableCount, sel.totalCount)})`;
}

/**
 * The modules × layers table as text. Layer cells are compact counts; with a selection a cell ends
 * in `*` when all of it trains and `~` when part of it does.
 */
export function formatModuleTable(structure: ModelStructure, selection?: Selection): string {
  const rows = moduleTable(structure, selection);
  const L = structure.numLayers;
  const header = ['module', 'params', 'share', ...(selection ? ['trainable'] : []), ...Array.from({ length: L }, (_, l) => `L${l}`)];
  const body: string[][] = rows.map((r) => [
    r.module,
    formatCount(r.total),
    formatShare(r.total, structure.totalCount),
    ...(selection ? [r.trainable ? formatCount(r.trainable) : '-'] : []),
    ...Array.from({ length: L }, (_, l) => {
      if (!r.perLayer.length) return '';
      const mark = r.trainablePerLayer?.[l] === 'all' ? '*' : r.trainablePerLayer?.[l] === 'some' ? '~' : '';
      return formatCompact(r.perLayer[l]!) + mark;
    }),
  ]);
  const placed = rows.reduce((s, r) => s + r.total, 0);
  const unplaced = structure.totalCount - placed;
  if (unplaced > 0) {
    body.push(['(not selectable)', formatCount(unplaced), formatShare(unplaced, structure.totalCount), ...(selection ? ['-'] : []), ...Array.from({ length: L }, () => '')]);
  }
  body.push(['all', formatCount(structure.totalCount), formatShare(structure.totalCount, structure.totalCount),
    ...(selection ? [formatCount(selection.trainableCount)] : []),
    ...Array.from({ length: L }, (_, l) => formatCompact(rows.reduce((s, r) => s + (r.perLayer[l] ?? 0), 0)))]);
  const widths = header.map((h, c) => Math.max(h.length, ...body.map((b) => b[c]!.length)));
  const line = (cells: string[]) => cells.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join('  ').trimEnd();
  return [line(header), ...body.map(line)].join('\n');
}
