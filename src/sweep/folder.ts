/**
 * The sweep folder:
 *
 *   sweep.json              the grid, the base model's sha256, the cells (what a re-run checks against)
 *   results.jsonl / .csv    one record per finished cell
 *   magnitude.json          mean |w| per module and layer of the base model
 *   report.md / .html       the tables, with the plots
 *   plots/NAME.vl.json/.svg Vega-Lite specs (data inline) and their SVG renderings
 *   runs/CELL/              each cell's ordinary `train` run folder (+ delta/, curves.svg)
 *   logs/CELL.log           each cell's training messages
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ModtuneError } from '../errors.js';
import { writeAtomic } from '../onnx/io.js';
import { VERSION } from '../version.js';
import type { Cell, SweepGrid } from './grid.js';
import type { SelectionCount } from './base.js';

export const SWEEP_FORMAT = 'modtune-sweep';

export interface SweepManifest {
  format: typeof SWEEP_FORMAT;
  version: 1;
  modtuneVersion: string;
  createdAt: string;
  grid: SweepGrid;
  /** `name`: set when the base is modtune's embedded default (the report names it, not its cache path). */
  base: { file: string; sha256: string; numLayers: number; name?: string };
  /** Hash of what decides every cell's result besides the cell: base sha256, tokenizer, shared options. */
  settingsHash: string;
  /** Hash of the settings and the list of cells. */
  gridHash: string;
  selections: Record<string, SelectionCount & { rates: number[] }>;
  cells: Cell[];
}

export const sweepFiles = (dir: string) => ({
  manifest: path.join(dir, 'sweep.json'),
  magnitude: path.join(dir, 'magnitude.json'),
  reportMd: path.join(dir, 'report.md'),
  reportHtml: path.join(dir, 'report.html'),
  plots: path.join(dir, 'plots'),
  runs: path.join(dir, 'runs'),
  logs: path.join(dir, 'logs'),
});

export const cellRunDir = (dir: string, id: string) => path.join(sweepFiles(dir).runs, id);
export const cellLogFile = (dir: string, id: string) => path.join(sweepFiles(dir).logs, `${id}.log`);

export function readSweepManifest(dir: string): SweepManifest | null {
  const file = sweepFiles(dir).manifest;
  if (!fs.existsSync(file)) return null;
  let m: SweepManifest;
  try {
    m = JSON.parse(fs.readFileSync(file, 'utf8')) as SweepManifest;
  } catch (e) {
    throw new ModtuneError(`${file}: not valid JSON (${(e as Error).message})`);
  }
  if (m?.format !== SWEEP_FORMAT || !Array.isArray(m.cells) || !m.grid) throw new ModtuneError(`${file}: not a modtune sweep manifest (format '${String(m?.format)}')`);
  return m;
}

export function writeSweepManifest(dir: string, m: Omit<SweepManifest, 'format' | 'version' | 'modtuneVersion' | 'createdAt'>, createdAt?: string): SweepManifest {
  const full: SweepManifest = { format: SWEEP_FORMAT, version: 1, modtuneVersion: VERSION, createdAt: createdAt ?? new Date().toISOString(), ...m };
  fs.mkdirSync(dir, { recursive: true });
  writeAtomic(sweepFiles(dir).manifest, `${JSON.stringify(full, null, 2)}\n`);
  return full;
}

/** What differs between the grid a folder was made for and this one, for the refusal message. */
export function gridDifferences(old: SweepManifest, next: Omit<SweepManifest, 'format' | 'version' | 'modtuneVersion' | 'createdAt'>): string[] {
  const out: string[] = [];
  if (old.base.sha256 !== next.base.sha256) out.push(`base model ${old.base.file} (sha256 ${old.base.sha256.slice(0, 12)}) then, ${next.base.file} (sha256 ${next.base.sha256.slice(0, 12)}) now`);
  const keys = new Set([...Object.keys(old.grid), ...Object.keys(next.grid)]) as Set<keyof SweepGrid>;
  for (const k of keys) {
    if (k === 'model') continue;
    const a = JSON.stringify(old.grid[k]);
    const b = JSON.stringify(next.grid[k]);
    if (a !== b) out.push(`${k} ${a ?? 'not set'} then, ${b ?? 'not set'} now`);
  }
  if (!out.length && old.gridHash !== next.gridHash) out.push('the cells differ');
  return out;
}

/** Remove what a sweep made in its folder (only those names), for --force with other settings. */
export function clearSweepOutputs(dir: string): void {
  const f = sweepFiles(dir);
  for (const p of [f.runs, f.logs, f.plots, f.magnitude, f.reportMd, f.reportHtml, path.join(dir, 'results.jsonl'), path.join(dir, 'results.csv')]) {
    fs.rmSync(p, { recursive: true, force: true });
  }
}
