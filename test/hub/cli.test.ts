import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadModel } from '../../src/onnx/io.js';
import { buildBert, parseHfConfig, toHfConfig, weightsFromModel, writeSafetensors } from '../../src/bert/index.js';
import { ROOT, tmpDir } from '../helpers/paths.js';
import { FakeHub } from './server.js';

/** Runs the real CLI entry (main) in a child process; the pull command is registered in src/cli/commands/index.ts. */
const ENTRY = `
import { commands } from './src/cli/commands/index.ts';
import { register } from './src/cli/commands/pull.ts';
if (!commands.includes(register)) commands.push(register);
const { main } = await import('./src/cli/main.ts');
await main(['node', 'modtune', ...process.argv.slice(1)]);
`;

/** Asynchronous: the fake Hub answers from this process while the CLI runs. */
function modtune(env: Record<string, string>, ...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', ENTRY, ...args], {
      cwd: ROOT,
      env: { ...process.env, HF_TOKEN: '', ...env },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

const REPO = 'acme/tiny-encoder';
let hub: FakeHub;

beforeAll(async () => {
  const config = parseHfConfig({
    model_type: 'bert', vocab_size: 50, hidden_size: 16, num_hidden_layers: 1, num_attention_heads: 2,
    intermediate_size: 32, max_position_embeddings: 16,
  }, 'config.json');
  // A bare encoder checkpoint (no head), names without the 'bert.' prefix as BertModel saves them.
  const weights = weightsFromModel(buildBert({ config, seed: 2 }));
  const src = path.join(tmpDir(), 'model.safetensors');
  writeSafetensors(src, new Map([...weights].map(([k, v]) => [k.replace(/^bert\./, ''), v])));
  hub = new FakeHub();
  await hub.start();
  hub.serve(REPO, 'main', 'config.json', JSON.stringify(toHfConfig(config)));
  hub.serve(REPO, 'main', 'model.safetensors', fs.readFileSync(src));
  hub.serve(REPO, 'main', 'tokenizer.json', '{"version": "1.0"}');
  hub.serve(REPO, 'main', 'vocab.txt', Array.from({ length: 50 }, (_, i) => `w${i}`).join('\n'));
});
afterAll(async () => {
  await hub.stop();
});

describe('modtune pull', () => {
  it('downloads into the cache, builds the model there and says where everything is', async () => {
    const cache = tmpDir('modtune-cli-cache-');
    const env = { HF_ENDPOINT: hub.url, MODTUNE_CACHE: cache };
    const r = await modtune(env, 'pull', REPO);
    expect(r.code, r.stderr).toBe(0);
    const dir = path.join(cache, 'hub', 'acme--tiny-encoder', 'main');
    const out = path.join(dir, 'model.onnx');
    expect(r.stdout).toContain(`pulled ${REPO}@main into ${dir}\n`);
    expect(r.stdout).toContain('  files: config.json, model.safetensors, tokenizer.json, vocab.txt\n');
    expect(r.stdout).toMatch(new RegExp(`wrote ${out.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} \\(\\d`));
    expect(r.stdout).toContain('outputs last_hidden_state [batch, sequence, 16], pooler_output [batch, 16]');
    expect(r.stdout).toContain(`  tokenizer: ${path.join(dir, 'tokenizer.json')}\n`);
    // Not a terminal: progress as plain lines on stderr, one final line per file.
    expect(r.stderr).toMatch(/^model\.safetensors: done, [\d.]+ KiB in \d+s/m);
    expect(r.stderr).not.toContain('\r');
    expect(loadModel(out).graph.initializers.has('bert.encoder.layer.0.attention.self.query.weight')).toBe(true);

    // Again, with a head and another output: the files come from the cache.
    const before = hub.requests.length;
    const other = path.join(tmpDir(), 'cls.onnx');
    const again = await modtune(env, 'pull', REPO, '--num-labels', '3', '--out', other);
    expect(again.code, again.stderr).toBe(0);
    expect(hub.requests.length).toBe(before);
    expect(again.stderr).toContain('model.safetensors: cached (');
    expect(again.stdout).toContain('outputs logits [batch, 3]');
    expect(again.stdout).toContain('the classification head (3 labels) is newly initialised');
    expect(fs.existsSync(other)).toBe(true);
    // The tokenizer travels with the model to --out.
    const copied = path.join(path.dirname(other), 'cls.tokenizer.json');
    expect(again.stdout).toContain(`  tokenizer: ${copied}\n`);
    expect(fs.readFileSync(copied, 'utf8')).toBe(fs.readFileSync(path.join(dir, 'tokenizer.json'), 'utf8'));
    expect(fs.readFileSync(path.join(path.dirname(other), 'cls.vocab.txt'), 'utf8')).toBe(fs.readFileSync(path.join(dir, 'vocab.txt'), 'utf8'));
  });

  it('bad input: one line on stderr, exit 1', async () => {
    const env = { HF_ENDPOINT: hub.url, MODTUNE_CACHE: tmpDir() };
    const bad = await modtune(env, 'pull', '../../etc');
    expect(bad.code).toBe(1);
    expect(bad.stderr).toBe("modtune: invalid repo id '../../etc': '..' is not a name; expected 'name' or 'namespace/name' (letters, digits, '-', '_', '.')\n");
    const missing = await modtune(env, 'pull', 'acme/nothing-here');
    expect(missing.code).toBe(1);
    expect(missing.stderr).toBe(`modtune: acme/nothing-here: config.json not found at ${hub.url}/acme/nothing-here/resolve/main/config.json (HTTP 404); check the repo id and the revision 'main'\n`);
    const labels = await modtune(env, 'pull', REPO, '--num-labels', 'two');
    expect(labels.code).toBe(1);
    expect(labels.stderr).toBe("modtune: pull: --num-labels should be a positive integer, got 'two'\n");
  });
});
