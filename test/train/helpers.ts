import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { buildBert, parseHfConfig, readSafetensors } from '../../src/bert/index.js';
import { saveModel } from '../../src/onnx/io.js';
import { generateArtifacts, type ArtifactOptions } from '../../src/artifacts/generate.js';
import { ROOT, tmpDir, VOCAB } from '../helpers/paths.js';
import { expect } from 'vitest';
import { ModtuneError } from '../../src/errors.js';
import { train, type TrainOptions } from '../../src/train/index.js';

/** The CLI with train/eval registered (see cli-entry.ts). */
export const ENTRY = path.join(ROOT, 'test/train/cli-entry.ts');

/**
 * A tiny BERT (hidden 32, 2 layers) with the bert-base-uncased vocabulary size, so the shared
 * vocab.txt tokenizes for it. Written with vocab.txt beside it, so `train` finds the tokenizer.
 */
export function writeTinyModel(dir: string, opts: { numLabels?: number; regression?: boolean; seed?: number; tokenizerBeside?: boolean; vocabSize?: number } = {}): string {
  const config = parseHfConfig({
    model_type: 'bert', vocab_size: opts.vocabSize ?? 30522, hidden_size: 32, num_hidden_layers: 2, num_attention_heads: 2,
    intermediate_size: 64, max_position_embeddings: 128, type_vocab_size: 2,
  }, 'tiny-config.json');
  const model = buildBert({ config, seed: opts.seed ?? 1, numLabels: opts.regression ? undefined : (opts.numLabels ?? 2), regression: opts.regression });
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, 'model.onnx');
  saveModel(model, file);
  if (opts.tokenizerBeside !== false) fs.copyFileSync(VOCAB, path.join(dir, 'vocab.txt'));
  return file;
}

/** Artifacts for the tiny model (dropout 0 and the shared vocab.txt unless `opts` say otherwise). */
export function tinyArtifacts(opts: Partial<ArtifactOptions> & { task: string; train: string }, modelOpts: Parameters<typeof writeTinyModel>[1] = {}): string {
  const dir = tmpDir('modtune-train-art-');
  const model = writeTinyModel(path.join(dir, 'model'), modelOpts);
  const out = path.join(dir, 'artifacts');
  generateArtifacts({ model, out, dropout: 0, tokenizer: VOCAB, ...opts });
  return out;
}

export function paramsOf(file: string): Map<string, Float32Array> {
  return new Map([...readSafetensors(file).tensors].map(([k, t]) => [k, t.data]));
}

export function maxAbsDiff(a: Map<string, Float32Array>, b: Map<string, Float32Array>): number {
  expectSameKeys(a, b);
  let m = 0;
  for (const [k, x] of a) {
    const y = b.get(k)!;
    for (let i = 0; i < x.length; i++) m = Math.max(m, Math.abs(x[i]! - y[i]!));
  }
  return m;
}

function expectSameKeys(a: Map<string, unknown>, b: Map<string, unknown>): void {
  const ka = [...a.keys()].sort().join(',');
  const kb = [...b.keys()].sort().join(',');
  if (ka !== kb) throw new Error(`different tensors: ${ka} vs ${kb}`);
}

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** tsx's loader, by URL, so that the CLI starts from any working folder. */
const TSX = import.meta.resolve('tsx');

/** Start the CLI (from the repository root unless `cwd`); stdout/stderr collected on the returned object. */
export function spawnCli(args: string[], env: Record<string, string> = {}, cwd = ROOT): { child: ChildProcess; done: Promise<CliResult> } {
  const child = spawn(process.execPath, ['--import', TSX, ENTRY, ...args], {
    cwd,
    env: { ...process.env, MODTUNE_CACHE: tmpDir('modtune-train-cache-'), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d) => (stdout += d));
  child.stderr!.on('data', (d) => (stderr += d));
  const done = new Promise<CliResult>((resolve) => child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr })));
  return { child, done };
}

export function runCli(args: string[], env: Record<string, string> = {}, cwd = ROOT): Promise<CliResult> {
  return spawnCli(args, env, cwd).done;
}

/** Resolve once `cond` holds (polled), or reject after `timeoutMs`. */
export async function waitFor(cond: () => boolean, timeoutMs = 60_000, everyMs = 5): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** Every file under `dir` with its bytes (as base64). */
export function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const f of fs.readdirSync(dir, { recursive: true }).map(String).sort()) {
    const p = path.join(dir, f);
    if (fs.statSync(p).isFile()) out[f] = fs.readFileSync(p).toString('base64');
  }
  return out;
}

/** The one-line message of a `train` that must fail with a ModtuneError. */
export async function trainFails(o: TrainOptions): Promise<string> {
  try {
    await train(o);
  } catch (e) {
    expect(e).toBeInstanceOf(ModtuneError);
    return (e as Error).message;
  }
  throw new Error('train succeeded');
}
