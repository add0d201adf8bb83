/**
 * A sweep's grid: the base model, the tasks, the selections, the seeds and the learning rates, plus
 * the `train` options every cell shares. Read from flags or a grid.json of the same fields, checked
 * in full before anything runs, and expanded into cells (one `train` run each).
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ModtuneError } from '../errors.js';
import { getGlueTask } from '../data/glue-tasks.js';
import { specSlug, validateOptions, type TrainOptions } from '../train/options.js';

/** `train` options that every cell of a sweep shares (and that decide its results). */
export const SHARED_OPTIONS = [
  'epochs', 'maxSteps', 'batchSize', 'gradAccum', 'groupByLength', 'lrSchedule', 'warmupRatio', 'weightDecay', 'maxGradNorm',
  'optimizer', 'dropout', 'maxLength', 'evalEvery', 'earlyStop', 'limitTrain', 'limitEval', 'backend', 'newHead', 'freezeHead',
  'cacheFrozen',
] as const satisfies ReadonlyArray<keyof TrainOptions>;
export type SharedOptions = Pick<TrainOptions, (typeof SHARED_OPTIONS)[number]>;

/**
 * `lr`: explicit rates (every selection tries each), `auto` (the selection's grid of three rates,
 * see lr.ts; the best chosen on dev), or `default` (the middle rate of that grid only).
 */
export type LrChoice = number[] | 'auto' | 'default';

export interface SweepGrid extends SharedOptions {
  /** Base model (.onnx). */
  model: string;
  /** tokenizer.json or vocab.txt; default: the one beside the model. */
  tokenizer?: string;
  /** GLUE task names as GLUE spells them (any spelling is accepted on input). */
  tasks: string[];
  /** Selection specs (`--train`), one cell row each. */
  train: string[];
  /** Seeds of the data order (and of a new head, and of random= masks). */
  seeds: number[];
  lr: LrChoice;
}

export interface Cell {
  /** Folder-safe and unique within the grid: `RTE-layernorm-s42-lr1e-3`. */
  id: string;
  task: string;
  selection: string;
  seed: number;
  lr: number;
}

const GRID_KEYS = new Set<string>(['model', 'tokenizer', 'tasks', 'train', 'seeds', 'lr', ...SHARED_OPTIONS]);

/** The first seed of `--seeds N` is train's default seed, so a 1-seed sweep matches a plain `train`. */
export const FIRST_SEED = 42;

/** `--seeds 3` → [42, 43, 44]; `--seeds 1,7` → [1, 7]. */
export function parseSeeds(v: string | number | number[], where = '--seeds'): number[] {
  if (Array.isArray(v)) return v.map((s) => checkSeed(s, where));
  const text = String(v).trim();
  if (/^\d+$/.test(text)) {
    const n = Number(text);
    if (n < 1) throw new ModtuneError(`${where} must be a count ≥ 1 or a list of seeds, got '${text}'`);
    return Array.from({ length: n }, (_, i) => FIRST_SEED + i);
  }
  return splitList(text, where).map((s) => checkSeed(Number(s), where));
}

function checkSeed(s: unknown, where: string): number {
  if (!Number.isSafeInteger(s)) throw new ModtuneError(`${where}: seeds must be integers, got ${JSON.stringify(s)}`);
  return s as number;
}

/** `auto`, `default`, or `1e-4,3e-4`. */
export function parseLr(v: string | number | number[] | undefined, where = '--lr'): LrChoice {
  if (v === undefined) return 'auto';
  if (Array.isArray(v) || typeof v === 'number') {
    const list = Array.isArray(v) ? v : [v];
    if (list.length === 0) throw new ModtuneError(`${where}: empty list of learning rates`);
    for (const x of list) if (!(typeof x === 'number' && Number.isFinite(x) && x > 0)) throw new ModtuneError(`${where}: learning rates must be positive numbers, got ${JSON.stringify(x)}`);
    return list;
  }
  const text = v.trim();
  if (text === 'auto' || text === 'default') return text;
  const list = splitList(text, where).map(Number);
  return parseLr(list.map((x, i) => (Number.isFinite(x) ? x : (() => { throw new ModtuneError(`${where}: '${splitList(text, where)[i]}' is not a number; expected auto, default or rates like 1e-4,3e-4`); })())), where);
}

export function splitList(text: string, where: string): string[] {
  const items = text.split(',').map((s) => s.trim());
  if (items.some((s) => !s)) throw new ModtuneError(`${where}: empty item in '${text}'`);
  return items;
}

/**
 * Selections are separated by spaces or semicolons on the command line, since a selection spec
 * itself may hold commas (`query@0,3`); a list without either is split on commas whose next item
 * does not look like a layer number (so `layernorm,bias` is two selections).
 */
export function parseSelections(text: string, where = '--train'): string[] {
  const t = text.trim();
  if (!t) throw new ModtuneError(`${where}: no selections given`);
  if (/[;\s]/.test(t)) return t.split(/[;\s]+/).filter(Boolean);
  const out: string[] = [];
  for (const piece of t.split(',')) {
    if (out.length && /^(\d+|first|last)(-(\d+|first|last))?(:|$)/.test(piece.trim())) out[out.length - 1] += `,${piece}`;
    else out.push(piece.trim());
  }
  if (out.some((s) => !s)) throw new ModtuneError(`${where}: empty selection in '${text}'`);
  return out;
}

/** Read and check a grid.json; relative paths in it are relative to the file. */
export function readGridFile(file: string): Partial<SweepGrid> {
  let raw: unknown;
  try {
    raw = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new ModtuneError(code === 'ENOENT' ? `--grid ${file}: file not found` : `--grid ${file}: not valid JSON (${(e as Error).message})`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new ModtuneError(`--grid ${file}: expected a JSON object with fields ${[...GRID_KEYS].join(', ')}`);
  const o = raw as Record<string, unknown>;
  for (const k of Object.keys(o)) if (!GRID_KEYS.has(k)) throw new ModtuneError(`--grid ${file}: unknown field '${k}'; fields: ${[...GRID_KEYS].join(', ')}`);
  const where = (k: string) => `${file}: field '${k}'`;
  const strings = (k: string): string[] | undefined => {
    const v = o[k];
    if (v === undefined) return undefined;
    if (typeof v === 'string') return k === 'train' ? parseSelections(v, where(k)) : splitList(v, where(k));
    if (!Array.isArray(v) || v.some((x) => typeof x !== 'string' || !x.trim())) throw new ModtuneError(`${where(k)}: expected a list of strings`);
    return v as string[];
  };
  const rel = (k: string): string | undefined => {
    const v = o[k];
    if (v === undefined) return undefined;
    if (typeof v !== 'string' || !v) throw new ModtuneError(`${where(k)}: expected a file path`);
    return path.resolve(path.dirname(file), v);
  };
  const grid: Partial<SweepGrid> = {
    model: rel('model'), tokenizer: rel('tokenizer'), tasks: strings('tasks'), train: strings('train'),
    seeds: o.seeds === undefined ? undefined : parseSeeds(o.seeds as number, where('seeds')),
    lr: o.lr === undefined ? undefined : parseLr(o.lr as string, where('lr')),
  };
  for (const k of SHARED_OPTIONS) {
    const v = o[k];
    if (v === undefined) continue;
    const bool = k === 'newHead' || k === 'freezeHead' || k === 'groupByLength' || k === 'cacheFrozen';
    const str = k === 'lrSchedule' || k === 'optimizer' || k === 'backend';
    const ok = bool ? typeof v === 'boolean' : str ? typeof v === 'string' : typeof v === 'number';
    if (!ok) throw new ModtuneError(`${where(k)}: expected a ${bool ? 'boolean' : str ? 'string' : 'number'}, got ${JSON.stringify(v)}`);
    (grid as Record<string, unknown>)[k] = v;
  }
  return Object.fromEntries(Object.entries(grid).filter(([, v]) => v !== undefined)) as Partial<SweepGrid>;
}

/** Fill in what a grid needs and check every field; task names come back as GLUE spells them. */
export function completeGrid(g: Partial<SweepGrid>): SweepGrid {
  if (!g.model) throw new ModtuneError('a sweep needs a base model: --model FILE.onnx (or "model" in --grid)');
  if (!g.tasks?.length) throw new ModtuneError('a sweep needs tasks: --tasks rte,mrpc,... (or "tasks" in --grid, or --preset)');
  if (!g.train?.length) throw new ModtuneError('a sweep needs selections: --train layernorm,bias,... (or "train" in --grid, or --preset)');
  const tasks = g.tasks.map((t) => getGlueTask(t).name);
  const dupTask = tasks.find((t, i) => tasks.indexOf(t) !== i);
  if (dupTask) throw new ModtuneError(`task ${dupTask} is listed twice`);
  const dupSel = g.train.find((s, i) => g.train!.indexOf(s) !== i);
  if (dupSel) throw new ModtuneError(`selection '${dupSel}' is listed twice`);
  const seeds = g.seeds ?? [FIRST_SEED];
  if (new Set(seeds).size !== seeds.length) throw new ModtuneError(`seeds ${seeds.join(',')}: a seed is listed twice`);
  const shared: SharedOptions = {};
  for (const k of SHARED_OPTIONS) if (g[k] !== undefined) (shared as Record<string, unknown>)[k] = g[k];
  validateOptions(shared);
  return { ...shared, model: path.resolve(g.model), ...(g.tokenizer ? { tokenizer: path.resolve(g.tokenizer) } : {}), tasks, train: [...g.train], seeds, lr: g.lr ?? 'auto' };
}

/** `1e-3`, `3e-5`, `2.5e-4`. */
export function formatLr(lr: number): string {
  return lr.toExponential().replace(/\.?0+e/, 'e').replace('e+', 'e');
}

/** Every cell of the grid: selection-major, then task, rate and seed. */
export function expandCells(grid: SweepGrid, ratesOf: (selection: string) => number[]): Cell[] {
  const cells: Cell[] = [];
  const slugOwner = new Map<string, string>();
  for (const selection of grid.train) {
    const slug = specSlug(selection);
    const other = slugOwner.get(slug);
    if (other !== undefined) throw new ModtuneError(`selections '${other}' and '${selection}' would share the folder name '${slug}'; write one of them differently`);
    slugOwner.set(slug, selection);
    for (const task of grid.tasks) {
      for (const lr of ratesOf(selection)) {
        for (const seed of grid.seeds) cells.push({ id: `${task}-${slug}-s${seed}-lr${formatLr(lr)}`, task, selection, seed, lr });
      }
    }
  }
  return cells;
}

/** What decides every cell's result besides the cell itself: the base model's bytes and the shared options. */
export function settingsOf(grid: SweepGrid): SharedOptions {
  const out: Record<string, unknown> = {};
  for (const k of SHARED_OPTIONS) if (grid[k] !== undefined) out[k] = grid[k];
  return out as SharedOptions;
}

export function hashJson(v: unknown): string {
  return crypto.createHash('sha256').update(canonicalJson(v)).digest('hex');
}

function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  if (v && typeof v === 'object') return `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${canonicalJson((v as Record<string, unknown>)[k])}`).join(',')}}`;
  return JSON.stringify(v);
}
