import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildBert } from '../../src/bert/build.js';
import { readSafetensors } from '../../src/bert/safetensors.js';
import { readModelFolder } from '../../src/pretrain/model-folder.js';
import { evaluateModelFolder } from '../../src/pretrain/evaluate.js';
import { pretrain, type PretrainOptions } from '../../src/pretrain/run.js';
import { FillMask } from '../../src/predict/fill-mask.js';
import { ROOT, tmpDir } from '../helpers/paths.js';
import { wikiLines, writeCorpus } from './helpers.js';

const CLI = path.join(ROOT, 'src/cli/main.ts');

let root: string;
let corpus: string;
let vocab: string;
let cache: string;

/** Options of a quick run: bert-tiny on the small vocabulary, 64-token sequences, no dropout. */
const quick = (out: string, more: Partial<PretrainOptions> = {}): PretrainOptions => ({
  corpus: [corpus], tokenizer: vocab, out, preset: 'bert-tiny', seqLen: 64, batchSize: 16, lr: 2e-3, dropout: 0,
  steps: 40, evalEvery: 20, saveEvery: 10, threads: 2, cacheDir: cache, ...more,
});

beforeAll(() => {
  root = tmpDir('modtune-pretrain-');
  cache = path.join(root, 'cache');
  ({ corpus, vocab } = writeCorpus(path.join(root, 'data'), wikiLines(2500)));
});
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

describe('modtune pretrain', () => {
  it('lowers the held-out MLM loss and writes a Hugging Face model folder that builds and fills masks', async () => {
    const out = path.join(root, 'run');
    const logs: string[] = [];
    const s = await pretrain({ ...quick(out), log: (l) => logs.push(l) });
    const metrics = fs.readFileSync(path.join(out, 'training/metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    const evals = metrics.filter((m) => m.type === 'eval');
    expect(evals.map((e) => e.step)).toEqual([0, 20, 40]);
    // From chance (ln V) to clearly better in 40 updates.
    expect(evals[2].loss).toBeLessThan(evals[0].loss - 1);
    expect(evals[2].accuracy).toBeGreaterThan(evals[0].accuracy);
    expect(s.complete).toBe(true);
    expect(s.tokens).toBe(40 * 16 * 64);

    for (const f of ['config.json', 'model.safetensors', 'vocab.txt', 'tokenizer.json', 'pretrain.json', 'loss-curve.svg', 'loss-curve.vl.json']) expect(fs.existsSync(path.join(out, f))).toBe(true);
    const record = JSON.parse(fs.readFileSync(path.join(out, 'pretrain.json'), 'utf8'));
    expect(record).toMatchObject({ complete: true, steps: 40, tokens: 40 * 16 * 64, heldOut: { step: 40, loss: evals[2].loss } });
    expect(record.corpus.files[0].sha256).toMatch(/^[0-9a-f]{64}$/);
    const config = JSON.parse(fs.readFileSync(path.join(out, 'config.json'), 'utf8'));
    expect(config.architectures).toEqual(['BertForMaskedLM']);

    // Plain inference on the folder reproduces the run's own held-out numbers (same sequences and masks).
    const again = await evaluateModelFolder({ model: out, corpus: [corpus], cacheDir: cache, seqLen: 64 });
    expect(again.loss).toBeCloseTo(record.heldOut.loss, 4);
    expect(again.accuracy).toBe(record.heldOut.accuracy);

    // The folder builds with and without the MLM head, and with a classification head for fine-tuning.
    const folder = readModelFolder(out);
    expect(folder.weights.has('cls.predictions.transform.dense.weight')).toBe(true);
    expect(() => buildBert({ config: folder.config, weights: folder.weights, mlmHead: 'all', pooler: false })).not.toThrow();
    const classifier = buildBert({ config: folder.config, weights: folder.weights, numLabels: 2 });
    expect(classifier.graph.outputs.map((o) => o.name)).toEqual(['logits']);

    // `build --mlm-head` writes the same masked-LM as an ONNX file; fill-mask agrees on both.
    const onnx = path.join(root, 'mlm.onnx');
    const built = spawnSync(process.execPath, ['--import', 'tsx', CLI, 'build', '--config', out, '--mlm-head', '--out', onnx], { cwd: ROOT, encoding: 'utf8' });
    expect(built.stdout).toMatch(/outputs logits \[batch, sequence, \d+\]/);
    expect(built.stdout).not.toMatch(/classification head/);
    const fromOnnx = await FillMask.load({ model: onnx, tokenizer: path.join(out, 'vocab.txt') });
    const onnxTop = (await fromOnnx.fill('the [MASK] of the city', 3))[0]!;
    await fromOnnx.release();

    const fm = await FillMask.load({ model: out });
    try {
      const [cands] = await fm.fill('the [MASK] of the city', 3);
      expect(cands!.map((c) => c.token)).toEqual(onnxTop.map((c) => c.token));
      expect(cands).toHaveLength(3);
      expect(cands![0]!.score).toBeGreaterThanOrEqual(cands![1]!.score);
      expect(cands!.reduce((a, c) => a + c.score, 0)).toBeLessThanOrEqual(1 + 1e-6);
      await expect(fm.fill('no mask here')).rejects.toThrow(/has no \[MASK\] token/);
    } finally {
      await fm.release();
    }
  });

  it('resumes after SIGKILL and ends with exactly the weights of an uninterrupted run', async () => {
    const whole = path.join(root, 'whole');
    await pretrain(quick(whole, { steps: 30, evalEvery: 15, saveEvery: 5 }));

    const killed = path.join(root, 'killed');
    const args = ['--import', 'tsx', CLI, 'pretrain', '--corpus', corpus, '--tokenizer', vocab, '--out', killed, '--preset', 'bert-tiny', '--seq-len', '64',
      '--batch-size', '16', '--lr', '2e-3', '--dropout', '0', '--steps', '30', '--eval-every', '15', '--save-every', '5', '--threads', '2'];
    const child = spawn(process.execPath, args, { cwd: ROOT, env: { ...process.env, MODTUNE_CACHE: cache }, stdio: 'ignore' });
    const latest = path.join(killed, 'training/checkpoints/LATEST');
    await new Promise<void>((resolve, reject) => {
      const timer = setInterval(() => {
        const step = fs.existsSync(latest) ? Number(/step-(\d+)/.exec(fs.readFileSync(latest, 'utf8'))?.[1]) : 0;
        if (step >= 10) {
          clearInterval(timer);
          child.kill('SIGKILL');
          resolve();
        }
      }, 50);
      child.on('exit', () => { clearInterval(timer); reject(new Error('the run ended before it could be killed')); });
    });
    await new Promise((r) => child.on('exit', r));
    const logs: string[] = [];
    const s = await pretrain({ out: killed, resume: true, cacheDir: cache, threads: 2, log: (l) => logs.push(l) });
    expect(logs.some((l) => /resuming .* from step (1\d|2\d) of 30/.test(l))).toBe(true);
    expect(s.steps).toBe(30);
    expect(fs.readFileSync(path.join(killed, 'model.safetensors')).equals(fs.readFileSync(path.join(whole, 'model.safetensors')))).toBe(true);
    const evalsOf = (d: string) => fs.readFileSync(path.join(d, 'training/metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l)).filter((m) => m.type === 'eval');
    expect(evalsOf(killed)).toEqual(evalsOf(whole));
  });

  it('a resume keeps the run\'s --fp16 storage (the resume command does not repeat it)', async () => {
    const out = path.join(root, 'half');
    const dtypes = () => new Set([...readSafetensors(path.join(out, 'model.safetensors')).tensors.values()].map((t) => t.dtype));
    const stop = new AbortController();
    const first = pretrain(quick(out, { steps: 20, evalEvery: 10, saveEvery: 5, fp16: true, log: (l) => { if (/step 10:/.test(l)) stop.abort(); }, signal: stop.signal }));
    await expect(first).rejects.toThrow(/interrupted at step \d+ of 20/);
    expect(dtypes()).toEqual(new Set(['F16']));
    expect(await pretrain({ out, resume: true, cacheDir: cache, threads: 2 })).toMatchObject({ steps: 20 });
    expect(dtypes()).toEqual(new Set(['F16']));
  });

  it('--from continues a model folder: it starts where that model ended, and pretrain.json counts both runs', async () => {
    const base = path.join(root, 'from-base');
    await pretrain(quick(base, { steps: 10, evalEvery: 10, saveEvery: 10 }));
    const before = JSON.parse(fs.readFileSync(path.join(base, 'pretrain.json'), 'utf8'));
    const out = path.join(root, 'from-next');
    const { tokenizer: _t, preset: _p, ...rest } = quick(out, { steps: 10, evalEvery: 10, saveEvery: 10 });
    await pretrain({ ...rest, from: base });
    const evals = fs.readFileSync(path.join(out, 'training/metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l)).filter((m) => m.type === 'eval');
    // Step 0 of the continuation scores the base model's weights on the same held-out masks.
    expect(evals[0].loss).toBeCloseTo(before.heldOut.loss, 5);
    expect(evals[1].loss).toBeLessThan(evals[0].loss);
    const record = JSON.parse(fs.readFileSync(path.join(out, 'pretrain.json'), 'utf8'));
    expect(record).toMatchObject({ tokens: 10 * 16 * 64, tokensBefore: 10 * 16 * 64, tokensTotal: 2 * 10 * 16 * 64, options: { from: 'from-base', preset: null } });
    // The record names files, never this machine's folders.
    expect(JSON.stringify(record)).not.toContain(root);
  });

  it('refuses a resume on another corpus or with other options, and an occupied --out', async () => {
    const out = path.join(root, 'other');
    await pretrain(quick(out, { steps: 5, evalEvery: 5, saveEvery: 5 }));
    const other = writeCorpus(path.join(root, 'data2'), wikiLines(800, 'wiki_001'), 'other.txt');
    await expect(pretrain({ out, resume: true, corpus: [other.corpus], cacheDir: cache })).rejects.toThrow(/--resume: the corpus is not the one this run was trained on/);
    // Another live process holds the folder: a second writer is refused, with or without --force.
    const writer = spawn(process.execPath, ['--import', 'tsx', '-e', `import { acquireFolderLock } from ${JSON.stringify(path.join(ROOT, 'src/util/folder-lock.ts'))}; acquireFolderLock(${JSON.stringify(out)}, 'pretrain'); console.log('locked'); setTimeout(() => {}, 60000);`], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((resolve) => writer.stdout!.on('data', () => resolve()));
    try {
      await expect(pretrain({ out, resume: true, cacheDir: cache })).rejects.toThrow(/is in use by .*one writer per folder/);
      await expect(pretrain(quick(out, { force: true }))).rejects.toThrow(/is in use by/);
    } finally {
      writer.kill('SIGKILL');
      await new Promise((r) => writer.on('exit', r));
    }
    await expect(pretrain({ out, resume: true, lr: 1e-4, cacheDir: cache })).rejects.toThrow(/--resume: this run was started with lr 0.002, not 0.0001/);
    await expect(pretrain(quick(out))).rejects.toThrow(/holds a pre-training run folder; continue it with --resume, or pass --force to replace it/);
    const userFolder = path.join(root, 'mine');
    fs.mkdirSync(userFolder);
    fs.writeFileSync(path.join(userFolder, 'notes.txt'), 'mine');
    await expect(pretrain(quick(userFolder, { force: true }))).rejects.toThrow(/is not empty and is not a pre-training run folder/);
    await expect(pretrain(quick(path.join(root, 'data'), { force: true }))).rejects.toThrow(/the corpus|the tokenizer/);
    expect(fs.readFileSync(path.join(userFolder, 'notes.txt'), 'utf8')).toBe('mine');
  });
});

describe('pretrain corpus input', () => {
  const cli = (args: string[], env: Record<string, string> = {}) =>
    spawnSync(process.execPath, ['--import', 'tsx', CLI, 'pretrain', ...args], { cwd: ROOT, encoding: 'utf8', env: { ...process.env, MODTUNE_CACHE: cache, ...env } });

  it('names a missing or empty corpus in one line', () => {
    const missing = cli(['--corpus', path.join(root, 'nope.txt'), '--out', path.join(root, 'x1'), '--steps', '1', '--tokenizer', vocab]);
    expect(missing.status).toBe(1);
    expect(missing.stderr.trim()).toMatch(/^modtune: --corpus .*nope\.txt: no such file or folder$/);
    const empty = path.join(root, 'empty.txt');
    fs.writeFileSync(empty, '\n\n   \n');
    const r = cli(['--corpus', empty, '--out', path.join(root, 'x2'), '--steps', '1', '--tokenizer', vocab]);
    expect(r.status).toBe(1);
    expect(r.stderr.trim().split('\n').pop()).toMatch(/^modtune: corpus: the files hold no text/);
    expect(fs.existsSync(path.join(root, 'x2'))).toBe(false);
  });

  it('skips binary and non-UTF-8 files, naming them, and reads a line of megabytes in pieces', async () => {
    const dir = path.join(root, 'mixed');
    fs.mkdirSync(dir);
    fs.copyFileSync(corpus, path.join(dir, 'a.txt'));
    fs.writeFileSync(path.join(dir, 'b.txt'), Buffer.from([0x68, 0x69, 0x00, 0x01, 0x02]));
    fs.writeFileSync(path.join(dir, 'c.txt'), Buffer.concat([Buffer.from('caf'), Buffer.from([0xe9]), Buffer.from(' au lait\n')]));
    fs.writeFileSync(path.join(dir, 'd.txt'), `${'the city of the river '.repeat(250_000)}\n`);
    const logs: string[] = [];
    const s = await pretrain({ ...quick(path.join(root, 'mixed-run'), { corpus: [dir], steps: 2, evalEvery: 2 }), log: (l) => logs.push(l) });
    expect(s.steps).toBe(2);
    expect(logs.filter((l) => l.startsWith('corpus: skipped'))).toEqual([
      expect.stringMatching(/b\.txt: a NUL byte near byte 2: a binary file, not text$/),
      expect.stringMatching(/c\.txt: not UTF-8 text/),
    ]);
    const meta = JSON.parse(fs.readFileSync(path.join(root, 'mixed-run/pretrain.json'), 'utf8'));
    const long = meta.corpus.files.find((f: { path: string }) => f.path === 'd.txt');
    // 5.5 MB in one line: five words a repeat, every one a token of the small vocabulary.
    expect(long.tokens).toBeGreaterThan(1_000_000);

    const onlyBinary = path.join(root, 'bin');
    fs.mkdirSync(onlyBinary);
    fs.writeFileSync(path.join(onlyBinary, 'x.txt'), Buffer.from([0, 1, 2, 3]));
    const r = cli(['--corpus', onlyBinary, '--out', path.join(root, 'x3'), '--steps', '1', '--tokenizer', vocab]);
    expect(r.stderr.trim().split('\n').pop()).toMatch(/^modtune: corpus: none of the 1 files could be read \(.*x\.txt: a NUL byte/);
  });

  it('never uses a half-written corpus cache (the write killed by a file-size limit)', () => {
    const own = path.join(root, 'cache-limited');
    const lines = wikiLines(3000, 'wiki_002');
    const data = writeCorpus(path.join(root, 'data3'), lines, 'third.txt');
    const args = ['--corpus', data.corpus, '--tokenizer', data.vocab, '--preset', 'bert-tiny', '--seq-len', '64', '--batch-size', '8', '--steps', '1', '--threads', '1'];
    // ulimit -f (in 512-byte blocks) stops the process while it writes the token cache.
    const limited = spawnSync('bash', ['-c', `ulimit -f 64; exec "${process.execPath}" --import tsx "${CLI}" pretrain ${args.map((a) => `'${a}'`).join(' ')} --out '${path.join(root, 'lim1')}'`],
      { cwd: ROOT, encoding: 'utf8', env: { ...process.env, MODTUNE_CACHE: own } });
    expect(limited.status).not.toBe(0);
    const corpusCache = path.join(own, 'corpus');
    const complete = fs.existsSync(corpusCache) ? fs.readdirSync(corpusCache).filter((d) => !d.includes('.tmp-')) : [];
    expect(complete).toEqual([]);
    const again = cli([...args, '--out', path.join(root, 'lim2')], { MODTUNE_CACHE: own });
    expect(again.status).toBe(0);
    expect(again.stderr).toMatch(/corpus: 1 files → [\d,]+ training/);
  });
});
