/**
 * Bad input to `generateArtifacts` / `modtune artifacts`: a ModtuneError with one line that says
 * what is wrong and what to do, exit code 1 and nothing else on stderr (no stack trace), and no
 * output folder or temporary folder left behind.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { generateArtifacts } from '../../../src/artifacts/generate.js';
import { buildBert } from '../../../src/bert/build.js';
import { ModtuneError } from '../../../src/errors.js';
import { DataType } from '../../../src/onnx/dtype.js';
import { Graph } from '../../../src/onnx/graph.js';
import { loadModel, newModel, saveModel } from '../../../src/onnx/io.js';
import { makeTensor } from '../../../src/onnx/tensor.js';
import { TORCH113, tmpDir } from '../../helpers/paths.js';
import { CliResult, runCli, TINY_CONFIG, withLimit, writeTinyBert } from './drive.js';

const CUSTOM_OP = { domain: 'com.example', opType: 'Passthrough', node: '/custom/passthrough' };

/**
 * The tiny BERT with a custom-domain op after layer 1's GELU: on the gradient path of every
 * LayerNorm below it. With `declareShape`, the file records the op's output shape (value_info), as
 * exporters do; without it, nothing downstream of the op has a known shape either.
 */
function writeWithCustomOp(dir: string, declareShape: boolean): string {
  const m = loadModel(writeTinyBert(dir));
  const g = m.graph;
  const gelu = g.nodes.find((n) => n.name === '/bert/encoder/layer.1/intermediate/intermediate_act_fn/Mul');
  if (!gelu) throw new Error('builder graph changed: no GELU Mul in layer 1');
  const value = gelu.outputs[0]!;
  const readers = g.consumers(value);
  const custom = g.addNode({ opType: CUSTOM_OP.opType, domain: CUSTOM_OP.domain, inputs: [value], name: CUSTOM_OP.node });
  for (const r of readers) r.inputs = r.inputs.map((i) => (i === value ? custom.outputs[0]! : i));
  if (declareShape) {
    const out = custom.outputs[0]!;
    g.valueInfo.set(out, { name: out, elemType: DataType.FLOAT, shape: ['batch', 'sequence', TINY_CONFIG.intermediateSize] });
  }
  g.invalidate();
  g.topologicalSort();
  const file = path.join(dir, declareShape ? 'custom-op-shaped.onnx' : 'custom-op.onnx');
  saveModel(m, file);
  return file;
}

/** y = x · W: a valid ONNX model with none of what BERT needs. */
function writePlainMatMul(dir: string): string {
  const g = new Graph();
  g.name = 'plain';
  g.inputs = [{ name: 'x', elemType: DataType.FLOAT, shape: [2, 4] }];
  g.outputs = [{ name: 'y', elemType: DataType.FLOAT, shape: [2, 3] }];
  g.addInitializer(makeTensor('w', DataType.FLOAT, [4, 3], new Float32Array(12).fill(0.5)));
  g.addNode({ opType: 'MatMul', inputs: ['x', 'w'], outputs: ['y'], name: 'matmul' });
  const file = path.join(dir, 'plain.onnx');
  saveModel(newModel(g, 17), file);
  return file;
}

function writeWithoutPooler(dir: string): string {
  const file = path.join(dir, 'no-pooler.onnx');
  saveModel(buildBert({ config: TINY_CONFIG, seed: 3, pooler: false }), file);
  return file;
}

interface Case {
  name: string;
  /** Library call options (model and out filled in). */
  opts: Record<string, unknown>;
  args: string[];
  message: RegExp;
}

let work: string;
let models: { tiny: string; custom: string; customShaped: string; plain: string; noPooler: string; torch: string };
let cases: Case[];
const cli = new Map<string, CliResult>();
let forced: CliResult;

const outFor = (name: string, via: 'lib' | 'cli') => path.join(work, 'out', `${name.replace(/[^a-z0-9]+/gi, '-')}-${via}`);

beforeAll(async () => {
  work = tmpDir('modtune-proof-bad-');
  fs.mkdirSync(path.join(work, 'out'));
  models = {
    tiny: writeTinyBert(work),
    custom: writeWithCustomOp(work, false),
    customShaped: writeWithCustomOp(work, true),
    plain: writePlainMatMul(work),
    noPooler: writeWithoutPooler(work),
    torch: path.join(TORCH113, 'tiny_bert_torch113.onnx'),
  };
  cases = [
    {
      name: 'op without a gradient rule on the path', opts: { model: models.custom, train: 'layernorm', numLabels: 2 },
      args: [models.custom, '--train', 'layernorm', '--num-labels', '2'],
      message: /^no gradient rule for op 'com\.example\.Passthrough' \(node '\/custom\/passthrough'\) on the path to parameter 'bert\.[a-z0-9.]*LayerNorm\.(weight|bias)'$/,
    },
    {
      name: 'selection outside the layers', opts: { model: models.tiny, train: 'embeddings@0', numLabels: 2 },
      args: [models.tiny, '--train', 'embeddings@0', '--num-labels', '2'],
      message: /^--train 'embeddings@0' selects no parameters: embeddings is outside the encoder layers; drop the '@\.\.\.'; this model has: embeddings, .*pooler, classifier \(layers 0-1\)$/,
    },
    {
      name: 'selection of a missing module', opts: { model: models.noPooler, train: 'pooler', numLabels: 2 },
      args: [models.noPooler, '--train', 'pooler', '--num-labels', '2'],
      message: /^--train 'pooler' selects no parameters: this model has no pooler; this model has: (?!.*pooler).*classifier \(layers 0-1\)$/,
    },
    {
      name: 'task with more labels than the head', opts: { model: models.torch, train: 'layernorm', task: 'mnli' },
      args: [models.torch, '--train', 'layernorm', '--task', 'mnli'],
      message: /tiny_bert_torch113\.onnx: the model's classification head \('classifier\.weight'\) has 2 labels but the task has 3 labels; use --new-head to replace it/,
    },
    {
      name: 'not a BERT', opts: { model: models.plain, train: 'layernorm', numLabels: 2 },
      args: [models.plain, '--train', 'layernorm', '--num-labels', '2'],
      message: /plain\.onnx: no BERT structure: found no LayerNorm; expected an embeddings LayerNorm/,
    },
    {
      name: 'ort format, linear schedule, no total steps', opts: { model: models.tiny, train: 'layernorm', numLabels: 2, format: 'ort' },
      args: [models.tiny, '--train', 'layernorm', '--num-labels', '2', '--format', 'ort'],
      message: /^--format ort: the linear schedule is baked into the optimizer graph, so the number of steps must be known now; pass --total-steps \(or use --lr-schedule constant\)$/,
    },
  ];

  const existing = outFor('existing', 'cli');
  fs.mkdirSync(existing);
  fs.writeFileSync(path.join(existing, 'keep.txt'), 'user data');
  const jobs = cases.map((c) => async () => {
    cli.set(c.name, await runCli(['artifacts', ...c.args, '--out', outFor(c.name, 'cli')]));
  });
  jobs.push(async () => {
    const args = ['artifacts', models.tiny, '--train', 'layernorm@last', '--num-labels', '2', '--out', existing];
    cli.set('existing', await runCli(args));
    forced = await runCli([...args, '--force']);
  });
  await withLimit(3, jobs);
});
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

/** Nothing was written for a failed run: no output folder, no temporary folder beside it. */
function expectNothingWritten(out: string) {
  expect(fs.existsSync(out), `${out} exists`).toBe(false);
  const leftovers = fs.readdirSync(path.dirname(out)).filter((f) => f.startsWith(`${path.basename(out)}.tmp`));
  expect(leftovers).toEqual([]);
}

function expectOneLineError(r: CliResult, message: RegExp) {
  expect(r.code).toBe(1);
  expect(r.stdout).toBe('');
  const lines = r.stderr.trimEnd().split('\n');
  expect(lines, r.stderr).toHaveLength(1);
  expect(lines[0]!.startsWith('modtune: ')).toBe(true);
  expect(lines[0]!.slice('modtune: '.length)).toMatch(message);
  expect(r.stderr).not.toMatch(/^\s+at /m);
}

describe('bad input to generateArtifacts and modtune artifacts', () => {
  it.each([0, 1, 2, 3, 4, 5])('case %i: the library throws a one-line ModtuneError and writes nothing', (i) => {
    const c = cases[i]!;
    const out = outFor(c.name, 'lib');
    let error: unknown;
    try {
      generateArtifacts({ ...(c.opts as { model: string; train: string }), out });
    } catch (e) {
      error = e;
    }
    expect(error, c.name).toBeInstanceOf(ModtuneError);
    const message = (error as Error).message;
    expect(message, c.name).toMatch(c.message);
    expect(message).not.toContain('\n');
    expectNothingWritten(out);
  });

  it.each([0, 1, 2, 3, 4, 5])('case %i: the CLI prints one line on stderr and exits 1', (i) => {
    const c = cases[i]!;
    expectOneLineError(cli.get(c.name)!, c.message);
    expectNothingWritten(outFor(c.name, 'cli'));
  });

  it('a folder of the user\'s is never replaced, not even with --force (which the message does not suggest)', () => {
    const existing = outFor('existing', 'cli');
    const refused = /^--out .*existing-cli is not empty and is not an artifacts folder \(no manifest\.json written by modtune\); choose another --out \(--force replaces only an artifacts folder\)$/;
    expectOneLineError(cli.get('existing')!, refused);
    expectOneLineError(forced, refused);
    expect(fs.readdirSync(existing)).toEqual(['keep.txt']);
    expect(fs.readdirSync(path.dirname(existing)).filter((f) => f.includes('.tmp'))).toEqual([]);
  });

  it('an artifacts folder is replaced only with --force; a folder holding the model never', () => {
    const lib = outFor('existing', 'lib');
    const opts = { model: models.tiny, train: 'layernorm@last', numLabels: 2, out: lib };
    generateArtifacts(opts);
    const manifest = fs.readFileSync(path.join(lib, 'manifest.json'));
    expect(() => generateArtifacts(opts)).toThrow(new RegExp(`^--out ${lib} holds an artifacts folder; pass --force to replace it, or choose another --out$`));
    expect(fs.readFileSync(path.join(lib, 'manifest.json')).equals(manifest)).toBe(true);
    generateArtifacts({ ...opts, force: true, seed: 5 });
    expect(fs.readdirSync(lib).sort()).toEqual(['manifest.json', 'native', 'params.safetensors']);
    expect(JSON.parse(fs.readFileSync(path.join(lib, 'manifest.json'), 'utf8')).selection.seed).toBe(5);

    const holder = path.dirname(models.tiny);
    const before = fs.readdirSync(holder).sort();
    expect(() => generateArtifacts({ ...opts, out: holder, force: true })).toThrow(`--out ${holder} holds the model ${models.tiny}, an input of this command; choose another --out`);
    expect(fs.readdirSync(holder).sort()).toEqual(before);
  });

  it('an op without a rule only matters on a gradient path (when its output shape is declared)', () => {
    // Layer 1's output LayerNorm sits above the custom op: its gradient never crosses it.
    const above = generateArtifacts({ model: models.customShaped, train: 'output-layernorm@last', numLabels: 2, freezeHead: true, out: outFor('above', 'lib') });
    expect(above.manifest.parameters.map((p) => p.name)).toEqual(['bert.encoder.layer.1.output.LayerNorm.weight', 'bert.encoder.layer.1.output.LayerNorm.bias']);
    // Layer 1's attention LayerNorm sits below it.
    expect(() => generateArtifacts({ model: models.customShaped, train: 'attention-layernorm@last', numLabels: 2, freezeHead: true, out: outFor('below', 'lib') })).toThrow(
      /^no gradient rule for op 'com\.example\.Passthrough' \(node '\/custom\/passthrough'\) on the path to parameter 'bert\.encoder\.layer\.1\.attention\.output\.LayerNorm\.(weight|bias)'$/,
    );
    expectNothingWritten(outFor('below', 'lib'));
  });

  it('--new-head is the way out of a label mismatch', () => {
    const out = outFor('new head', 'lib');
    const m = generateArtifacts({ model: models.torch, train: 'layernorm', task: 'mnli', newHead: true, out, format: 'native' }).manifest;
    expect(m.task).toMatchObject({ name: 'MNLI', headReused: false, head: { kind: 'classification', numLabels: 3 } });
    expect(m.parameters.find((p) => p.name === 'classifier.weight')!.shape).toEqual([3, 32]);
  });
});
