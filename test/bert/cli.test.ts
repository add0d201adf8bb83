import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadModel } from '../../src/onnx/io.js';
import { generateArtifacts } from '../../src/artifacts/generate.js';
import { buildBert, countParameters } from '../../src/bert/build.js';
import { toHfConfig } from '../../src/bert/config.js';
import { writeSafetensors } from '../../src/bert/safetensors.js';
import { weightsFromModel } from '../../src/bert/weights.js';
import { ROOT, tmpDir } from '../helpers/paths.js';
import { floats, run, tinyConfig } from './helpers.js';

/**
 * Runs the CLI's main() with the build command registered (the command list may not include it yet
 * in this tree; registering twice is avoided).
 */
const ENTRY = `
import { commands } from './src/cli/commands/index.ts';
import { register } from './src/cli/commands/build.ts';
if (!commands.includes(register)) commands.push(register);
const { main } = await import('./src/cli/main.ts');
await main(['node', 'modtune', ...process.argv.slice(1)]);
`;

function modtune(...args: string[]) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', ENTRY, ...args], { cwd: ROOT, encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('modtune build', () => {
  it('builds a preset with a head and reports path, size and parameter count', async () => {
    const dir = tmpDir();
    const out = path.join(dir, 'tiny.onnx');
    const r = modtune('build', '--preset', 'bert-tiny', '--num-labels', '3', '--seed', '5', '--perturb-layernorm', '--out', out);
    expect(r.stderr).toBe(`modtune build: WARNING: ${out} has RANDOM weights (seed 5): a preset has no pretrained weights; predictions are meaningless until it is trained\n`);
    expect(r.code).toBe(0);
    const size = fs.statSync(out).size;
    expect(r.stdout).toContain(`wrote ${out} (${(size / 2 ** 20).toFixed(1)} MiB)`);
    expect(r.stdout).toContain(`${(4_385_920 + 3 * 128 + 3).toLocaleString('en-US')} parameters; outputs logits [batch, 3]`);
    const model = loadModel(out);
    expect(countParameters(model)).toBe(4_385_920 + 3 * 128 + 3);
    // Same seed, same model as the library builds.
    const lib = buildBert({ config: { ...(await import('../../src/bert/config.js')).presetConfig('bert-tiny') }, numLabels: 3, seed: 5, perturbLayerNorm: true });
    const feeds = { input_ids: [[101, 2023, 2003, 102]] };
    expect(floats((await run(model, feeds)).logits)).toEqual(floats((await run(lib, feeds)).logits));
  });

  it('writes the uncased BERT vocabulary beside a preset model, and artifacts record it', () => {
    const dir = tmpDir();
    const out = path.join(dir, 'tiny.onnx');
    const r = modtune('build', '--preset', 'bert-tiny', '--num-labels', '2', '--out', out);
    expect(r.code).toBe(0);
    const vocab = path.join(dir, 'tiny.vocab.txt');
    expect(r.stdout).toContain(`tokenizer: ${vocab} (the uncased BERT vocabulary)`);
    const text = fs.readFileSync(vocab, 'utf8');
    expect(text).toBe(fs.readFileSync(path.join(ROOT, 'models/vocab/bert-base-uncased.txt'), 'utf8'));
    expect(text.split('\n').filter(Boolean)).toHaveLength(30522);
    const art = generateArtifacts({ model: out, train: 'layernorm', task: 'sst2', out: path.join(dir, 'art') });
    expect(art.manifest.tokenizer.file).toBe('vocab.txt');
    expect(fs.readFileSync(path.join(dir, 'art', 'vocab.txt'), 'utf8')).toBe(text);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('build --config DIR uses the weights beside the config, and says loudly when there are none', async () => {
    const dir = tmpDir();
    const config = tinyConfig();
    const source = buildBert({ config, numLabels: 2, seed: 3, perturbLayerNorm: true });
    fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(toHfConfig(config)));
    fs.writeFileSync(path.join(dir, 'vocab.txt'), '[PAD]\n[UNK]\n[CLS]\n[SEP]\nhello\n');
    const empty = modtune('build', '--config', dir, '--out', path.join(dir, 'random.onnx'));
    expect(empty.code).toBe(0);
    expect(empty.stderr).toMatch(/WARNING: .*random\.onnx has RANDOM weights \(seed 0\): no --weights given and no model\.safetensors \(or its index\) beside /);
    writeSafetensors(path.join(dir, 'model.safetensors'), weightsFromModel(source));
    const out = path.join(dir, 'out.onnx');
    const r = modtune('build', '--config', path.join(dir, 'config.json'), '--out', out);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`weights: ${path.join(dir, 'model.safetensors')}`);
    expect(r.stdout).toContain(`tokenizer: ${path.join(dir, 'out.vocab.txt')}`);
    const feeds = { input_ids: [[2, 7, 9, 3]] };
    expect(floats((await run(loadModel(out), feeds)).logits)).toEqual(floats((await run(source, feeds)).logits));
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('builds from config.json + safetensors (file, or sharded folder), keeping the checkpoint\'s head', async () => {
    const dir = tmpDir();
    const config = tinyConfig({ model_type: 'roberta', pad_token_id: 1, max_position_embeddings: 42 });
    const source = buildBert({ config, numLabels: 2, seed: 3, perturbLayerNorm: true });
    fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(toHfConfig(config)));
    const weights = weightsFromModel(source);
    writeSafetensors(path.join(dir, 'model.safetensors'), weights);
    const out = path.join(dir, 'out.onnx');
    const r = modtune('build', '--config', path.join(dir, 'config.json'), '--weights', path.join(dir, 'model.safetensors'), '--out', out, '--external-data');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/wrote .*out\.onnx \(.*\) \+ .*out\.onnx_data \(.*\)/);
    expect(r.stdout).toContain('roberta: 2 layers, hidden 16');
    expect(r.stdout).toContain('outputs logits [batch, 2]');
    const feeds = { input_ids: [[0, 17, 33, 2, 1]], attention_mask: [[1, 1, 1, 1, 0]] };
    const want = floats((await run(source, feeds)).logits);
    expect(floats((await run(loadModel(out), feeds)).logits)).toEqual(want);

    // Sharded: two shards and an index in a folder; --config given as the folder.
    const sharded = tmpDir();
    const names = [...weights.keys()];
    const half = Math.ceil(names.length / 2);
    const shardFiles = ['model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors'];
    const weightMap: Record<string, string> = {};
    [names.slice(0, half), names.slice(half)].forEach((part, i) => {
      writeSafetensors(path.join(sharded, shardFiles[i]!), new Map(part.map((n) => [n, weights.get(n)!])));
      for (const n of part) weightMap[n] = shardFiles[i]!;
    });
    fs.writeFileSync(path.join(sharded, 'model.safetensors.index.json'), JSON.stringify({ metadata: {}, weight_map: weightMap }));
    fs.copyFileSync(path.join(dir, 'config.json'), path.join(sharded, 'config.json'));
    const r2 = modtune('build', '--config', sharded, '--weights', sharded, '--out', path.join(sharded, 'm.onnx'));
    expect(r2.code).toBe(0);
    expect(floats((await run(loadModel(path.join(sharded, 'm.onnx')), feeds)).logits)).toEqual(want);
  });

  it('builds a regression model without pooler from a bare encoder checkpoint, with a new head', () => {
    const dir = tmpDir();
    const config = tinyConfig();
    const body = new Map([...weightsFromModel(buildBert({ config, seed: 1, pooler: false }))].map(([k, v]) => [k.replace(/^bert\./, ''), v]));
    fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(toHfConfig(config)));
    writeSafetensors(path.join(dir, 'model.safetensors'), body);
    const r = modtune('build', '--config', path.join(dir, 'config.json'), '--weights', dir, '--regression', '--out', path.join(dir, 'reg.onnx'));
    expect(r.stderr).toBe('');
    expect(r.stdout).toContain('outputs logits [batch, 1]');
    expect(r.stdout).toContain('the checkpoint has no classification head: initialised a new one (seed 0)');
    const m = loadModel(path.join(dir, 'reg.onnx'));
    expect(JSON.parse(m.metadata['modtune.config']!).problem_type).toBe('regression');
    const r2 = modtune('build', '--config', path.join(dir, 'config.json'), '--weights', dir, '--no-pooler', '--out', path.join(dir, 'body.onnx'));
    expect(r2.stdout).toContain('outputs last_hidden_state [batch, sequence, 16]');
  });

  it('fails with one-line errors and exit code 1', () => {
    const dir = tmpDir();
    const cases: Array<[string[], RegExp]> = [
      [['--preset', 'bert-tiny', '--config', 'x.json'], /^modtune: build: give exactly one of --preset <name> or --config <config\.json>\n$/],
      [['--config', path.join(dir, 'missing.json')], /^modtune: .*missing\.json: cannot read config \(ENOENT\)\n$/],
    ];
    // A checkpoint for a 1-layer model against a 2-layer config.
    fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(toHfConfig(tinyConfig())));
    writeSafetensors(path.join(dir, 'one.safetensors'), weightsFromModel(buildBert({ config: tinyConfig({ num_hidden_layers: 1 }), init: 'zeros' })));
    cases.push([['--config', path.join(dir, 'config.json'), '--weights', path.join(dir, 'one.safetensors')], /^modtune: .*one\.safetensors: weights do not match the config: missing 16: bert\.encoder\.layer\.1\.attention\.self\.query\.weight, .* and 13 more\n$/]);
    for (const [args, message] of cases) {
      const r = modtune('build', ...args, '--out', path.join(dir, 'x.onnx'));
      expect(r.code, args.join(' ')).toBe(1);
      expect(r.stderr).toMatch(message);
    }
    expect(fs.existsSync(path.join(dir, 'x.onnx'))).toBe(false);
  });
});
