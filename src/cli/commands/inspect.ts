import type { Command } from 'commander';
import { ModtuneError } from '../../errors.js';
import { loadModel } from '../../onnx/io.js';
import { discoverParameters } from '../../modules/discover.js';
import { selectParameters } from '../../modules/select.js';
import { countOnes } from '../../modules/masks.js';
import { describeShape, describeTrainable, formatCount, formatModuleTable, moduleTable } from '../../modules/summary.js';
import type { ModelStructure, Selection } from '../../modules/types.js';
import { DEFAULTS } from '../../train/options.js';

export interface InspectOptions {
  train?: string;
  json?: boolean;
  seed?: string;
  freezeHead?: boolean;
}

/** `modtune inspect`: what a model is made of, and what a `--train` selection would train. */
export function register(program: Command): void {
  program
    .command('inspect')
    .description('show the model family, shape and parameters per module and layer; with --train, what that selection trains')
    .argument('<model>', 'ONNX model file')
    .option('--train <spec>', "selection, e.g. 'layernorm', 'attention@11', 'bias', 'layernorm:top=5%'")
    .option('--json', 'print one JSON object instead of text')
    .option('--seed <n>', `seed for random= selections (default ${DEFAULTS.seed}, as train and artifacts use)`)
    .option('--freeze-head', 'do not add the classifier to the selection')
    .action((file: string, opts: InspectOptions) => {
      process.stdout.write(inspect(file, opts));
    });
}

/** The report `modtune inspect` prints, as a string. */
export function inspect(file: string, opts: InspectOptions): string {
  const seed = parseSeed(opts.seed);
  const structure = discoverParameters(loadModel(file), { label: file });
  const selection = opts.train !== undefined
    ? selectParameters(structure, opts.train, { seed, freezeHead: opts.freezeHead ?? false })
    : undefined;
  return opts.json ? `${JSON.stringify(toJson(file, structure, selection))}\n` : toText(file, structure, selection);
}

function parseSeed(s: string | undefined): number {
  if (s === undefined) return DEFAULTS.seed;
  if (!/^\d+$/.test(s.trim())) throw new ModtuneError(`--seed '${s}': expected a non-negative integer`);
  return Number(s);
}

function toText(file: string, s: ModelStructure, sel: Selection | undefined): string {
  const lines = [
    `model: ${file}`,
    describeShape(s),
    `parameters: ${formatCount(s.totalCount)} in ${s.parameters.length + s.unplaced.length} tensors`,
    '',
    formatModuleTable(s, sel),
  ];
  const shared = s.parameters.filter((p) => p.sharedBy?.length);
  if (shared.length) lines.push('', `${shared.length} parameters share stored tensors with others (exporter dedup); training gives each its own copy`);
  if (s.unplaced.length) {
    lines.push('', 'not selectable:');
    for (const u of s.unplaced) lines.push(`  ${u.hfName ?? u.name} [${u.shape.join(', ')}]: ${u.reason}`);
  }
  if (sel) {
    lines.push('', `selection: ${sel.spec}`, describeTrainable(sel));
    if (sel.masks.size) lines.push(`partially trained tensors: ${sel.masks.size} (entries chosen by top=/random=)`);
  }
  return `${lines.join('\n')}\n`;
}

function toJson(file: string, s: ModelStructure, sel: Selection | undefined): object {
  const out: Record<string, unknown> = {
    file,
    family: s.family,
    numLayers: s.numLayers,
    hiddenSize: s.hiddenSize,
    numHeads: s.numHeads ?? null,
    intermediateSize: s.intermediateSize ?? null,
    vocabSize: s.vocabSize ?? null,
    totalCount: s.totalCount,
    parameters: s.parameters.map((p) => ({
      name: p.name, hfName: p.hfName, module: p.module, layer: p.layer, role: p.role,
      shape: p.shape, hfShape: p.hfShape, transposed: p.transposed, size: p.size,
      ...(p.sharedBy ? { sharedBy: p.sharedBy } : {}),
    })),
    unplaced: s.unplaced,
    modules: moduleTable(s, sel).map((r) => ({ module: r.module, total: r.total, perLayer: r.perLayer, ...(sel ? { trainable: r.trainable } : {}) })),
  };
  if (sel) {
    out.spec = sel.spec;
    out.trainable = sel.parameters.map((p) => p.hfName);
    out.trainableCount = sel.trainableCount;
    out.trainableShare = sel.trainableCount / sel.totalCount;
    out.partial = Object.fromEntries(sel.parameters.filter((p) => sel.masks.has(p.name)).map((p) => [p.hfName, countOnes(sel.masks.get(p.name)!)]));
  }
  return out;
}
