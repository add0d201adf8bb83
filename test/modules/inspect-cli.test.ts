import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { DataType } from '../../src/onnx/dtype.js';
import { Graph } from '../../src/onnx/graph.js';
import { loadModel, newModel, saveModel } from '../../src/onnx/io.js';
import { discoverParameters } from '../../src/modules/discover.js';
import { selectParameters } from '../../src/modules/select.js';
import { makeTensor } from '../../src/onnx/tensor.js';
import { FIXTURES, ROOT, TORCH113, tmpDir } from '../helpers/paths.js';

/**
 * main() with the inspect command registered (once, whether or not the command list has it yet).
 * A script file rather than `node -e`: node would take a first argument `inspect` for its debugger.
 */
const ENTRY = path.join(tmpDir('modtune-inspect-cli-'), 'entry.mts');
fs.writeFileSync(ENTRY, `
import { commands } from ${JSON.stringify(pathToFileURL(path.join(ROOT, 'src/cli/commands/index.ts')).href)};
import { register } from ${JSON.stringify(pathToFileURL(path.join(ROOT, 'src/cli/commands/inspect.ts')).href)};
if (!commands.includes(register)) commands.push(register);
const { main } = await import(${JSON.stringify(pathToFileURL(path.join(ROOT, 'src/cli/main.ts')).href)});
await main(['node', 'modtune', ...process.argv.slice(2)]);
`);

function modtune(...args: string[]) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', ENTRY, ...args], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const EVAL = path.join(TORCH113, 'tiny_bert_torch113.onnx');

describe('modtune inspect', () => {
  it('prints family, shape, the modules × layers table and the trainable count', () => {
    const r = modtune('inspect', EVAL, '--train', 'layernorm');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const lines = r.stdout.split('\n');
    expect(lines[0]).toBe(`model: ${EVAL}`);
    expect(lines[1]).toBe('family: bert   layers: 2   hidden: 32   heads: 2   ffn: 64   vocab: 1,000');
    expect(lines[2]).toBe('parameters: 52,386 in 41 tensors');
    expect(lines[4]).toMatch(/^module\s+params\s+share\s+trainable\s+L0\s+L1$/);
    expect(lines.find((l) => l.startsWith('embeddings ')))?.toMatch(/^embeddings\s+34,112\s+65\.12%\s+-$/);
    expect(lines.find((l) => l.startsWith('attention-layernorm')))?.toMatch(/^attention-layernorm\s+128\s+0\.244%\s+128\s+64\*\s+64\*$/);
    expect(lines.find((l) => l.startsWith('query')))?.toMatch(/^query\s+2,112\s+4\.03%\s+-\s+1,056\s+1,056$/);
    expect(lines.find((l) => l.startsWith('classifier')))?.toMatch(/^classifier\s+66\s+0\.126%\s+66$/);
    expect(r.stdout).toContain('trainable: 386 of 52,386 (0.737%)');
  });

  it('without --train: no trainable column; unplaced heads are listed', () => {
    const r = modtune('inspect', path.join(FIXTURES, 'ort_bert_toy_optimized.onnx'));
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('family: bert   layers: 5   hidden: 32   heads: 4   ffn: 37   vocab: 99');
    expect(r.stdout).toMatch(/^module\s+params\s+share\s+L0\s+L1\s+L2\s+L3\s+L4$/m);
    expect(r.stdout).toMatch(/^\(not selectable\)\s+1,285\s+2\.28%$/m);
    expect(r.stdout).toContain("  cls.seq_relationship.weight [2, 32]: task head 'cls.seq_relationship', not a sequence classifier");
    expect(r.stdout).not.toContain('trainable:');
  });

  it('--json prints one object with the parameters and the selection', () => {
    const r = modtune('inspect', EVAL, '--json', '--train', 'attention-layernorm@last,query:top=10%', '--freeze-head');
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(r.stdout.trim().split('\n')).toHaveLength(1);
    expect(j).toMatchObject({ family: 'bert', numLayers: 2, hiddenSize: 32, numHeads: 2, vocabSize: 1000, totalCount: 52386 });
    expect(j.parameters).toHaveLength(41);
    expect(j.parameters[0]).toEqual({
      name: 'bert.embeddings.word_embeddings.weight', hfName: 'bert.embeddings.word_embeddings.weight', module: 'embeddings', layer: null,
      role: 'weight', shape: [1000, 32], hfShape: [1000, 32], transposed: false, size: 32000,
    });
    expect(j.parameters.find((p: { name: string }) => p.name === 'onnx::MatMul_336')).toMatchObject({
      hfName: 'bert.encoder.layer.0.attention.self.query.weight', module: 'query', layer: 0, role: 'weight', transposed: true,
    });
    const lib = selectParameters(discoverParameters(loadModel(EVAL)), 'attention-layernorm@last,query:top=10%', { freezeHead: true });
    expect(j.trainable).toEqual(lib.parameters.map((p) => p.hfName));
    expect(j.trainable).toContain('bert.encoder.layer.1.attention.output.LayerNorm.bias');
    expect(j.trainable).not.toContain('classifier.weight');
    expect(j.trainableCount).toBe(64 + Math.round(0.1 * 2 * 1056));
    const partial = Object.values(j.partial as Record<string, number>).reduce((a, b) => a + b, 0);
    expect(partial).toBe(211);
  });

  it('--seed reaches random= selections', () => {
    const run = (seed: string) => JSON.parse(modtune('inspect', EVAL, '--json', '--train', 'layernorm:random=10%', '--freeze-head', '--seed', seed).stdout);
    const [a, b] = [run('3'), run('4')];
    const s = discoverParameters(loadModel(EVAL));
    const lib = selectParameters(s, 'layernorm:random=10%', { freezeHead: true, seed: 3 });
    expect(a.trainableCount).toBe(32);
    expect(a.partial).toEqual(Object.fromEntries(lib.parameters.map((p) => [p.hfName, lib.masks.get(p.name)!.reduce((x, y) => x + y, 0)])));
    expect(a.partial).not.toEqual(b.partial);
  });

  it('bad input is one line on stderr and exit 1', () => {
    const dir = tmpDir();
    const notOnnx = path.join(dir, 'notes.onnx');
    fs.writeFileSync(notOnnx, 'this is not a model\n');
    const g = new Graph();
    g.inputs.push({ name: 'x', elemType: DataType.FLOAT, shape: [1, 4] });
    g.addInitializer(makeTensor('w', DataType.FLOAT, [4, 4], new Float32Array(16)));
    g.addNode({ opType: 'MatMul', inputs: ['x', 'w'], outputs: ['y'] });
    g.outputs.push({ name: 'y', elemType: DataType.FLOAT, shape: [1, 4] });
    const plain = path.join(dir, 'plain.onnx');
    saveModel(newModel(g), plain);

    const cases: [string[], RegExp][] = [
      [['inspect', notOnnx], /^modtune: .*notes\.onnx: not a valid ONNX model/],
      [['inspect', plain], /^modtune: .*plain\.onnx: no BERT structure found: looked for LayerNorms .* and attention Softmax nodes, found neither$/],
      [['inspect', EVAL, '--train', 'lyernorm'], /^modtune: unknown module 'lyernorm' \(did you mean 'layernorm'\?\); modules: .*; groups: /],
      [['inspect', EVAL, '--train', 'layernorm@12'], /^modtune: layer 12 out of range in 'layernorm@12': model has layers 0-1$/],
      [['inspect', EVAL, '--seed', 'abc'], /^modtune: --seed 'abc': expected a non-negative integer$/],
    ];
    for (const [args, re] of cases) {
      const r = modtune(...args);
      expect(r.code, args.join(' ')).toBe(1);
      expect(r.stdout).toBe('');
      expect(r.stderr.trimEnd().split('\n'), args.join(' ')).toHaveLength(1);
      expect(r.stderr.trimEnd()).toMatch(re);
    }
  });
});

describe('inspect and train agree on random= selections', () => {
  it('use the same default seed, so inspect shows what train will train', async () => {
    const { inspect } = await import('../../src/cli/commands/inspect.js');
    const { generateArtifacts } = await import('../../src/artifacts/generate.js');
    const { DEFAULTS } = await import('../../src/train/options.js');
    const spec = 'layernorm:random=30%';
    const shown = JSON.parse(inspect(EVAL, { train: spec, json: true, freezeHead: true })) as { partial: Record<string, number> };
    const dir = tmpDir('modtune-inspect-seed-');
    const { manifest } = generateArtifacts({ model: EVAL, train: spec, numLabels: 2, freezeHead: true, out: path.join(dir, 'art'), seed: DEFAULTS.seed });
    const trained = Object.fromEntries(manifest.parameters.filter((p) => p.mask).map((p) => [p.name, p.trainableEntries]));
    expect(Object.keys(trained).length).toBeGreaterThan(2);
    expect(shown.partial).toEqual(trained);
    // And the default is the one artifacts use without --seed.
    const { manifest: implicit } = generateArtifacts({ model: EVAL, train: spec, numLabels: 2, freezeHead: true, out: path.join(dir, 'art2') });
    expect(implicit.selection.seed).toBe(DEFAULTS.seed);
    fs.rmSync(dir, { recursive: true, force: true });
  });
});
