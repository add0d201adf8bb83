/**
 * `modtune artifacts` tells the user what it wrote and how much trains; the numbers are checked
 * against the files on disk, the manifest, and a count made from the model's config by hand.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Manifest } from '../../../src/artifacts/manifest.js';
import { formatBytes } from '../../../src/cli/commands/artifacts.js';
import { readSafetensors } from '../../../src/bert/safetensors.js';
import { tmpDir } from '../../helpers/paths.js';
import { CliResult, runCli, TORCH_FIXTURES, withLimit, writeBuilderTiny } from './drive.js';

// builder-tiny: hidden 32, 2 layers, 3 labels.
const HIDDEN = 32;
const LAYERS = 2;
const LABELS = 3;
const LAYERNORM_ENTRIES = (1 + 2 * LAYERS) * 2 * HIDDEN; // embeddings + 2 per layer, weight and bias
const CLASSIFIER_ENTRIES = LABELS * HIDDEN + LABELS;

const RUNS = [
  { train: 'layernorm', trainable: LAYERNORM_ENTRIES + CLASSIFIER_ENTRIES, tensors: 10 + 2 },
  { train: 'layernorm:top=10%', trainable: Math.round(0.1 * LAYERNORM_ENTRIES) + CLASSIFIER_ENTRIES, tensors: null },
];

let work: string;
let results: { out: string; r: CliResult; m: Manifest }[];
let totalParameters: number;

beforeAll(async () => {
  work = tmpDir('modtune-proof-cli-');
  const model = writeBuilderTiny(work);
  totalParameters = [...readSafetensors(path.join(TORCH_FIXTURES, 'builder-tiny/model.safetensors')).tensors.values()].reduce((s, t) => s + t.data.length, 0);
  results = await withLimit(2, RUNS.map((run, i) => async () => {
    const out = path.join(work, `artifacts-${i}`);
    const r = await runCli(['artifacts', model, '--train', run.train, '--num-labels', String(LABELS), '--format', 'both', '--total-steps', '10', '--out', out]);
    const m = r.code === 0 ? (JSON.parse(fs.readFileSync(path.join(out, 'manifest.json'), 'utf8')) as Manifest) : (undefined as unknown as Manifest);
    return { out, r, m };
  }));
});
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

function filesUnder(dir: string): string[] {
  return fs.readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => path.relative(dir, path.join(e.parentPath, e.name)))
    .sort();
}

describe('modtune artifacts output', () => {
  it.each([0, 1])('run %i succeeds quietly', (i) => {
    const { r } = results[i]!;
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
  });

  it.each([0, 1])('run %i lists every file it wrote, with its size', (i) => {
    const { out, r } = results[i]!;
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(new RegExp(`^wrote ${out.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} in \\d+\\.\\d s$`));
    const listed = lines.filter((l) => l.startsWith('  ')).map((l) => {
      const [file, ...size] = l.trim().split(/\s+/);
      return { file: file!, size: size.join(' ') };
    });
    expect(listed.map((l) => l.file).sort()).toEqual(filesUnder(out));
    for (const { file, size } of listed) expect(size, file).toBe(formatBytes(fs.statSync(path.join(out, file)).size));
    expect(listed.map((l) => l.file)).toEqual(expect.arrayContaining([
      'manifest.json', 'params.safetensors', 'native/train_step.onnx', 'native/gradient.onnx', 'native/eval.onnx', 'native/infer.onnx', 'native/weights.bin',
      'ort/training_model.onnx', 'ort/eval_model.onnx', 'ort/optimizer_model.onnx', 'ort/checkpoint',
    ]));
  });

  it.each([0, 1])('run %i prints the trainable count, which is the manifest\'s and the hand count', (i) => {
    const { r, m } = results[i]!;
    const run = RUNS[i]!;
    expect(m.selection.trainableCount).toBe(run.trainable);
    expect(m.selection.totalCount).toBe(totalParameters);
    expect(m.parameters.reduce((s, p) => s + p.trainableEntries, 0)).toBe(run.trainable);
    if (run.tensors !== null) expect(m.parameters).toHaveLength(run.tensors);
    const share = (100 * run.trainable) / totalParameters;
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines).toContain(`task: - (${LABELS} labels, head kept from the model)`);
    expect(lines).toContain(`selection: ${run.train} → ${m.parameters.length} tensors`);
    expect(lines).toContain(`trainable: ${run.trainable.toLocaleString('en-US')} of ${totalParameters.toLocaleString('en-US')} (${share < 1 ? share.toFixed(3) : share.toFixed(2)}%)`);
  });
});

describe('default output folder', () => {
  it('is artifacts/<model>-<selection>, with the spec made file-name safe', async () => {
    const { defaultOut } = await import('../../../src/cli/commands/artifacts.js');
    expect(defaultOut('/m/bert-tiny.onnx', 'layernorm@last')).toBe(path.join('artifacts', 'bert-tiny-layernorm@last'));
    expect(defaultOut('x.ONNX', 'layernorm:top=5%,bias')).toBe(path.join('artifacts', 'x-layernorm_top=5_bias'));
  });
});
