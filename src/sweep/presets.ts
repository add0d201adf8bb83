/**
 * Named grids. `paper`: the experiment of Akbar-Tajari, Rajaee and Pilehvar (EMNLP 2022) — every
 * BERT module trained alone, the LayerNorms layer by layer, and the largest-magnitude LayerNorm
 * entries against as many random ones — on every GLUE task whose data is present (WNLI left out,
 * as BERT's paper does). `quick`: a subset sized to finish in about an hour on a 2-core machine for
 * bert-mini (see the README's Sweep section for how the size was estimated).
 */
import { ModtuneError } from '../errors.js';
import { resolveGlueDir } from '../data/paths.js';
import type { SweepGrid } from './grid.js';

export const PRESET_NAMES = ['paper', 'quick'] as const;
export type PresetName = (typeof PRESET_NAMES)[number];

/** The module rows of the paper's table, in its order. `classifier` is the linear probe. */
export const PAPER_MODULES = [
  'full', 'embeddings', 'query', 'key', 'value', 'attention-output', 'intermediate', 'output', 'layernorm', 'bias', 'classifier',
];
/** Shares of the LayerNorm entries compared, largest-magnitude against random. */
export const PAPER_SUBSET_PERCENTS = [10, 30];
export const PAPER_TASKS = ['CoLA', 'SST-2', 'MRPC', 'STS-B', 'QQP', 'MNLI', 'QNLI', 'RTE'];

export const QUICK_TASKS = ['RTE', 'MRPC', 'STS-B', 'SST-2'];
export const QUICK_SELECTIONS = ['full', 'classifier', 'layernorm', 'bias', 'query', 'intermediate', 'layernorm@0', 'layernorm@last', 'layernorm:top=10%', 'layernorm:random=10%'];

export interface PresetContext {
  numLayers: number;
  /** GLUE folder, as `--data` (see resolveGlueDir). */
  data?: string;
}

export function presetGrid(name: string, ctx: PresetContext): Partial<SweepGrid> {
  if (name === 'paper') {
    const tasks = PAPER_TASKS.filter((t) => hasData(t, ctx.data));
    if (!tasks.length) throw new ModtuneError(`--preset paper: no GLUE task data found (looked for ${PAPER_TASKS.join(', ')}); run \`modtune data pull TASK\` or pass --data DIR`);
    const layerwise = Array.from({ length: ctx.numLayers }, (_, l) => `layernorm@${l}`);
    const subsets = PAPER_SUBSET_PERCENTS.flatMap((p) => [`layernorm:top=${p}%`, `layernorm:random=${p}%`]);
    return { tasks, train: [...PAPER_MODULES, ...layerwise, ...subsets], seeds: [42, 43, 44], lr: 'auto', epochs: 3 };
  }
  if (name === 'quick') {
    return { tasks: [...QUICK_TASKS], train: [...QUICK_SELECTIONS], seeds: [42, 43], lr: 'default', epochs: 3, limitTrain: 1500, limitEval: 500 };
  }
  throw new ModtuneError(`unknown --preset '${name}': expected one of ${PRESET_NAMES.join(', ')}`);
}

function hasData(task: string, data: string | undefined): boolean {
  try {
    resolveGlueDir(task, { data });
    return true;
  } catch (e) {
    if (e instanceof ModtuneError) return false;
    throw e;
  }
}
