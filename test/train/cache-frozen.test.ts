/**
 * `train --cache-frozen`: the frozen layers below the first trained one run once per example, and
 * the run's results equal those of the uncached run with dropout off below that layer.
 *
 * Tolerances: losses and parameters agree to 1e-6 (absolute). The prefix and the suffix are separate
 * ONNX Runtime sessions whose graph optimizer may fuse the ops at the cut differently from the whole
 * model's session, so float32 results may differ by a few units in the last place (a loss near 0.69
 * has an ulp of 6e-8; 1e-6 is about 16 ulps); on this machine they come out bit-identical.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { generateArtifacts, readManifest } from '../../src/artifacts/generate.js';
import { readGlueSplit } from '../../src/data/glue-reader.js';
import { loadTokenizer } from '../../src/data/tokenizer.js';
import { collate } from '../../src/data/batching.js';
import { encodeExamples } from '../../src/data/encoded.js';
import { loadModel } from '../../src/onnx/io.js';
import { DROPOUT_MASK_SUFFIX } from '../../src/artifacts/native/dropout-inputs.js';
import { evaluateRun, readConfig, readMetrics, readSummary, train, TrainInterrupted, type TrainOptions, type TrainRecord, type EvalRecord } from '../../src/train/index.js';
import { readGridFile, sweep } from '../../src/sweep/index.js';
import { FIXTURES, GLUE, tmpDir, VOCAB } from '../helpers/paths.js';
import { readSafetensors } from '../../src/bert/safetensors.js';
import { maxAbsDiff, paramsOf, runCli, trainFails, writeTinyModel } from './helpers.js';

const quiet = { cacheDir: false as const, data: GLUE, threads: 1 };
/** 48 SST-2 examples in batches of 8: 6 updates an epoch, 12 in all; dev scored on 32. */
const run = { task: 'sst2', limitTrain: 48, limitEval: 32, batchSize: 8, epochs: 2 };
const TOL = 1e-6;

let model: string;
beforeAll(() => {
  model = writeTinyModel(path.join(tmpDir('modtune-cf-model-'), 'm'));
});

function trainLosses(dir: string): number[] {
  return readMetrics(dir).filter((r): r is TrainRecord => r.type === 'train').map((r) => r.loss);
}
function evals(dir: string): EvalRecord[] {
  return readMetrics(dir).filter((r): r is EvalRecord => r.type === 'eval');
}
function maxDiff(a: number[], b: number[]): number {
  expect(a.length).toBe(b.length);
  return Math.max(...a.map((x, i) => Math.abs(x - b[i]!)));
}
const finalParams = (dir: string) => paramsOf(path.join(dir, 'checkpoints', 'step-12', 'params.safetensors'));

/** `train` with its messages collected. */
async function trainLogged(o: TrainOptions): Promise<string[]> {
  const lines: string[] = [];
  await train({ ...quiet, ...o, log: (l) => lines.push(l) });
  return lines;
}

/** Names of the nodes that drop out (Dropout, or its lowered RandomUniformLike form) in a model file. */
/** Where a model drops out: its Dropout nodes, lowered ones, and the dropout-mask inputs that replaced the rest. */
function dropoutNodes(file: string): string[] {
  const g = loadModel(file).graph;
  const nodes = g.nodes.filter((n) => n.opType === 'Dropout' || n.opType === 'RandomUniformLike').map((n) => n.name.replace(/\/RandomUniformLike$/, ''));
  const masks = g.inputs.filter((i) => i.name.endsWith(DROPOUT_MASK_SUFFIX)).map((i) => i.name.slice(0, -DROPOUT_MASK_SUFFIX.length));
  return [...nodes, ...masks].sort();
}

describe('artifacts built with cacheFrozen', () => {
  let dir: string;
  let plain: string;
  beforeAll(() => {
    const root = tmpDir('modtune-cf-art-');
    dir = path.join(root, 'cached');
    plain = path.join(root, 'plain');
    generateArtifacts({ model, train: 'layernorm@last', task: 'sst2', out: dir, dropout: 0.1, tokenizer: VOCAB, cacheFrozen: true });
    generateArtifacts({ model, train: 'layernorm@last', task: 'sst2', out: plain, dropout: 0.1, tokenizer: VOCAB });
  });

  it('hold a prefix (token ids → hidden states entering layer k) and suffix models that take the hidden states', () => {
    const m = readManifest(dir);
    const fp = m.native!.frozenPrefix!;
    expect(fp.layer).toBe(1);
    expect(fp.hiddenSize).toBe(32);
    expect(m.dropout.offBelowLayer).toBe(1);
    expect(fp.prefix.inputs.map((i) => i.role)).toEqual(['input_ids', 'attention_mask', 'token_type_ids']);
    expect(fp.prefix.outputs).toEqual([{ name: 'hidden_states', role: 'hidden_states', dtype: 'float32', shape: ['batch', 'sequence', 32] }]);
    for (const spec of [fp.trainStep, fp.gradient, fp.eval]) {
      const roles = spec.inputs.map((i) => i.role);
      expect(roles).toContain('hidden_states');
      expect(roles).toContain('attention_mask'); // the attention mask is still computed from it
      expect(roles).not.toContain('input_ids');
      expect(roles).not.toContain('token_type_ids');
      // The same parameters, by their Hugging Face names, as the full models.
      expect(spec.inputs.filter((i) => i.role === 'parameter').map((i) => i.name).sort()).toEqual(m.parameters.map((p) => p.name).sort());
    }
    expect(m.native!.trainStep.inputs.map((i) => i.role)).toContain('input_ids');
    for (const key of ['prefix', 'trainStep', 'gradient', 'eval'] as const) expect(fs.existsSync(path.join(dir, fp[key].file))).toBe(true);
    expect(readManifest(plain).native!.frozenPrefix).toBeUndefined();
    // The eight models share one copy of the frozen weights.
    const weights = (d: string) => fs.statSync(path.join(d, 'native/weights.bin')).size;
    expect(weights(dir)).toBe(weights(plain));
  });

  it('drop out only at and above layer k, in the full train step as in the cached one', () => {
    const full = dropoutNodes(path.join(dir, 'native/train_step.onnx'));
    const cached = dropoutNodes(path.join(dir, 'native/cached_train_step.onnx'));
    const everywhere = dropoutNodes(path.join(dir, '..', 'plain', 'native/train_step.onnx'));
    expect(full).toEqual(cached);
    expect(full.some((n) => n.includes('layer.1'))).toBe(true);
    expect(full.some((n) => n.includes('classifier'))).toBe(true);
    expect(full.filter((n) => n.includes('layer.0') || n.includes('embeddings'))).toEqual([]);
    // Without cacheFrozen the layers below drop out too: exactly the nodes taken out above.
    expect(everywhere.filter((n) => !full.includes(n)).every((n) => n.includes('layer.0') || n.includes('embeddings'))).toBe(true);
    expect(everywhere.length).toBeGreaterThan(full.length);
  });

  it('prefix then cached eval model computes what the full eval model computes, on a padded batch', async () => {
    const m = readManifest(dir);
    const fp = m.native!.frozenPrefix!;
    const ds = encodeExamples(loadTokenizer(VOCAB), readGlueSplit('sst2', 'dev', GLUE).examples.slice(0, 6), 128);
    const b = collate(ds, [0, 1, 2, 3, 4, 5]);
    const dims = [b.batch, b.seqLen];
    const tokens = { input_ids: new ort.Tensor('int64', b.inputIds, dims), attention_mask: new ort.Tensor('int64', b.attentionMask, dims), token_type_ids: new ort.Tensor('int64', b.tokenTypeIds, dims) };
    const params: Record<string, ort.Tensor> = {};
    for (const [name, data] of paramsOf(path.join(dir, m.initialValues))) params[name] = new ort.Tensor('float32', data, m.parameters.find((p) => p.name === name)!.shape);
    const labels = new ort.Tensor('int64', b.labels as BigInt64Array, [b.batch]);
    const session = (f: string) => ort.InferenceSession.create(path.join(dir, f), { intraOpNumThreads: 1 });
    const [full, prefix, suffix] = await Promise.all([session(m.native!.eval.file), session(fp.prefix.file), session(fp.eval.file)]);
    const want = await full.run({ ...tokens, labels, ...params });
    const hidden = (await prefix.run(tokens)).hidden_states!;
    expect(hidden.dims).toEqual([b.batch, b.seqLen, 32]);
    const got = await suffix.run({ hidden_states: hidden, attention_mask: tokens.attention_mask, labels, ...params });
    expect(Math.abs((got.loss!.data as Float32Array)[0]! - (want.loss!.data as Float32Array)[0]!)).toBeLessThanOrEqual(TOL);
    const [gl, wl] = [got.logits!.data as Float32Array, want.logits!.data as Float32Array];
    expect(Math.max(...Array.from(gl, (v, i) => Math.abs(v - wl[i]!)))).toBeLessThanOrEqual(TOL);
    await Promise.all([full.release(), prefix.release(), suffix.release()]);
  });

  it('cut above the last layer when only the head trains, and say why nothing is cached for the embeddings or layer 0', () => {
    const root = tmpDir('modtune-cf-sel-');
    const head = generateArtifacts({ model, train: 'classifier', task: 'sst2', out: path.join(root, 'head'), dropout: 0, tokenizer: VOCAB, cacheFrozen: true });
    expect(head.frozenPrefix).toEqual({ layer: 2 });
    expect(head.manifest.native!.frozenPrefix!.layer).toBe(2);
    const ln = generateArtifacts({ model, train: 'layernorm', task: 'sst2', out: path.join(root, 'ln'), dropout: 0, tokenizer: VOCAB, cacheFrozen: true });
    expect(ln.frozenPrefix).toEqual({ nothing: 'the selection trains the embeddings (bert.embeddings.LayerNorm.weight), which no frozen layer lies below' });
    expect(ln.manifest.native!.frozenPrefix).toBeUndefined();
    expect(ln.manifest.dropout.offBelowLayer).toBeUndefined();
    const l0 = generateArtifacts({ model, train: 'layernorm@0', task: 'sst2', out: path.join(root, 'l0'), dropout: 0, tokenizer: VOCAB, cacheFrozen: true });
    expect(l0.frozenPrefix).toEqual({ nothing: 'the selection trains encoder layer 0 (bert.encoder.layer.0.attention.output.LayerNorm.weight); only the embedding lookup lies below it' });
    expect(() => generateArtifacts({ model, train: 'layernorm@last', task: 'sst2', out: path.join(root, 'ort'), format: 'ort', tokenizer: VOCAB, cacheFrozen: true }))
      .toThrow("--cache-frozen builds native models only (the ort format's training runtime takes token ids); use --format native or both");
    expect(fs.existsSync(path.join(root, 'ort'))).toBe(false);
  });

  // Exporters' graphs (torch.onnx training export with in-graph transposes; optimum's DistilBERT).
  for (const [fixture, selection] of [['torch113/tiny_bert_torch113_training.onnx', 'layernorm@1'], ['optimum_tiny-distilbert-sst2.onnx', 'layernorm@last']] as const) {
    it(`cut an exported graph the same way (${fixture}, ${selection})`, async () => {
      const out = path.join(tmpDir('modtune-cf-fixture-'), 'art');
      const r = generateArtifacts({ model: path.join(FIXTURES, fixture), train: selection, task: 'sst2', out, dropout: 0, newHead: true, tokenizer: VOCAB, cacheFrozen: true });
      const fp = r.manifest.native!.frozenPrefix!;
      expect(fp.layer).toBe(1);
      const [full, prefix, suffix] = await Promise.all([r.manifest.native!.eval.file, fp.prefix.file, fp.eval.file].map((f) => ort.InferenceSession.create(path.join(out, f), { intraOpNumThreads: 1 })));
      const [B, S] = [2, 6];
      const ints = (f: (i: number) => bigint) => new ort.Tensor('int64', BigInt64Array.from({ length: B * S }, (_, i) => f(i)), [B, S]);
      const feeds: Record<string, ort.Tensor> = {
        input_ids: ints((i) => BigInt(100 + ((i * 37) % 500))), attention_mask: ints((i) => (i < S || i % S < 4 ? 1n : 0n)), token_type_ids: ints(() => 0n),
        labels: new ort.Tensor('int64', BigInt64Array.of(0n, 1n), [B]),
      };
      for (const [name, t] of readSafetensors(path.join(out, 'params.safetensors')).tensors) feeds[name] = new ort.Tensor('float32', t.data, t.shape);
      const only = (s: ort.InferenceSession, f: Record<string, ort.Tensor>) => Object.fromEntries(Object.entries(f).filter(([k]) => s.inputNames.includes(k)));
      const want = (await full.run(only(full, feeds))).loss!.data as Float32Array;
      const hidden = (await prefix.run(only(prefix, feeds))).hidden_states!;
      const got = (await suffix.run(only(suffix, { ...feeds, hidden_states: hidden }))).loss!.data as Float32Array;
      expect(Math.abs(got[0]! - want[0]!)).toBeLessThanOrEqual(TOL);
      await Promise.all([full.release(), prefix.release(), suffix.release()]);
    });
  }

  it('refuse a manifest whose frozen-prefix model lies outside the folder', () => {
    const copy = path.join(tmpDir('modtune-cf-tamper-'), 'art');
    fs.cpSync(dir, copy, { recursive: true });
    const file = path.join(copy, 'manifest.json');
    const m = JSON.parse(fs.readFileSync(file, 'utf8'));
    m.native.frozenPrefix.prefix.file = '../../etc/passwd';
    fs.writeFileSync(file, JSON.stringify(m));
    expect(() => readManifest(copy)).toThrow(/field 'native\.frozenPrefix\.prefix\.file'/);
  });
});

describe('a cached run equals the uncached run (dropout 0)', () => {
  let uncached: string;
  let cached: string;
  let cachedLog: string[];
  beforeAll(async () => {
    const root = tmpDir('modtune-cf-runs-');
    uncached = path.join(root, 'uncached');
    cached = path.join(root, 'cached');
    await trainLogged({ ...run, model, train: 'layernorm@last', dropout: 0, out: uncached });
    cachedLog = await trainLogged({ ...run, model, train: 'layernorm@last', dropout: 0, out: cached, cacheFrozen: true });
  });

  it('says what it cached', () => {
    expect(cachedLog).toContainEqual(expect.stringMatching(/^--cache-frozen: the embeddings and layer 0 ran once over 80 examples in \d+\.\d s \(0\.2 MiB of hidden states kept in memory\); every step starts at layer 1$/));
    expect(readConfig(cached).cacheFrozen).toBe(true);
    expect(readConfig(uncached).cacheFrozen).toBe(false);
  });

  it('has the same loss at every step, the same dev metrics and the same parameters', () => {
    const a = trainLosses(uncached);
    expect(a).toHaveLength(12);
    expect(maxDiff(a, trainLosses(cached))).toBeLessThanOrEqual(TOL);
    const [ea, eb] = [evals(uncached), evals(cached)];
    expect(eb.map((e) => e.step)).toEqual([6, 12]);
    expect(eb.map((e) => e.metrics)).toEqual(ea.map((e) => e.metrics));
    expect(maxDiff(ea.map((e) => e.loss), eb.map((e) => e.loss))).toBeLessThanOrEqual(TOL);
    expect(maxAbsDiff(finalParams(uncached), finalParams(cached))).toBeLessThanOrEqual(TOL);
    expect(maxAbsDiff(paramsOf(path.join(uncached, 'best/params.safetensors')), paramsOf(path.join(cached, 'best/params.safetensors')))).toBeLessThanOrEqual(TOL);
    // ...and training did move them (a comparison of two unchanged starts would prove nothing).
    expect(maxAbsDiff(finalParams(cached), paramsOf(path.join(cached, 'artifacts/params.safetensors')))).toBeGreaterThan(1e-3);
  });

  it('leaves what comes after training unchanged: eval of the run (full models, token ids) scores as the run did', async () => {
    const r = await evaluateRun({ dir: cached, data: GLUE, limitEval: 32, threads: 1, cacheDir: false });
    const summary = readSummary(cached)!;
    expect(r.source.step).toBe(summary.bestStep);
    expect(r.metrics).toEqual(summary.bestMetrics);
  });

  it('falls back to the uncached run, with a message, when the cache is over its budget', async () => {
    const out = path.join(tmpDir('modtune-cf-budget-'), 'run');
    const log = await trainLogged({ ...run, model, train: 'layernorm@last', dropout: 0, out, cacheFrozen: true, cacheBudget: 0.1 });
    expect(log).toContain('--cache-frozen: the hidden states entering layer 1 need 0.2 MiB for 80 examples, more than --cache-budget 0.1 MiB; training without the cache (same results, every step computes layer 0 again)');
    expect(log.some((l) => l.includes('ran once'))).toBe(false);
    expect(maxDiff(trainLosses(out), trainLosses(cached))).toBeLessThanOrEqual(TOL);
    expect(maxAbsDiff(finalParams(out), finalParams(cached))).toBeLessThanOrEqual(TOL);
  });

  it('resumes a stopped cached run (computing the cache again) to the parameters of the uninterrupted one', async () => {
    const out = path.join(tmpDir('modtune-cf-resume-'), 'run');
    const stop = new AbortController();
    const first: string[] = [];
    await expect(train({
      ...quiet, ...run, model, train: 'layernorm@last', dropout: 0, out, cacheFrozen: true, signal: stop.signal,
      log: (l) => { first.push(l); if (l.startsWith('eval step 6')) stop.abort(); },
    })).rejects.toThrow(/^interrupted at step 6 of 12/);
    const second = await trainLogged({ out, resume: true });
    expect(second).toContainEqual(expect.stringMatching(/^--cache-frozen: the embeddings and layer 0 ran once over 80 examples/));
    expect(second).toContain(`resuming ${out} from step 6 of 12`);
    expect(maxDiff(trainLosses(out), trainLosses(cached))).toBeLessThanOrEqual(TOL);
    expect(maxAbsDiff(finalParams(out), finalParams(cached))).toBeLessThanOrEqual(TOL);
  });

  it('stops cleanly when interrupted while computing the cache, and resumes from the start', async () => {
    const out = path.join(tmpDir('modtune-cf-early-'), 'run');
    const stop = new AbortController();
    stop.abort();
    const e = await train({ ...quiet, ...run, model, train: 'layernorm@last', dropout: 0, out, cacheFrozen: true, signal: stop.signal }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(TrainInterrupted);
    expect((e as Error).message).toBe(`interrupted while computing the frozen layers, before step 1 of 12; nothing new to save. Continue with: modtune train --resume --out ${out}`);
    await train({ ...quiet, out, resume: true });
    expect(maxAbsDiff(finalParams(out), finalParams(cached))).toBeLessThanOrEqual(TOL);
  });

  it('refuses to resume a run with another --cache-frozen', async () => {
    expect(await trainFails({ ...quiet, out: uncached, resume: true, cacheFrozen: true }))
      .toBe(`cannot resume ${uncached}: it was started with a different configuration: --cache-frozen true (the run has false). Resume with the run's own options (just --resume --out ${uncached}) or start a new run with another --out`);
  });
});

describe('a cached run equals the uncached run with dropout off below layer k (dropout 0.1, seeded)', () => {
  const accum = { ...run, gradAccum: 2 };
  let root: string;
  let art: string;
  beforeAll(() => {
    root = tmpDir('modtune-cf-dropout-');
    art = path.join(root, 'art');
    // Seeded Dropout nodes: each session draws the same masks, so two runs can be compared exactly.
    generateArtifacts({ model, train: 'layernorm@last', task: 'sst2', out: art, dropout: 0.1, dropoutSeed: 1234, tokenizer: VOCAB, cacheFrozen: true });
  });

  it('with gradient accumulation, step for step', async () => {
    const uncached = path.join(root, 'uncached');
    const cached = path.join(root, 'cached');
    await trainLogged({ ...accum, artifacts: art, out: uncached });
    await trainLogged({ ...accum, artifacts: art, out: cached, cacheFrozen: true });
    const a = trainLosses(uncached);
    expect(a).toHaveLength(6);
    expect(maxDiff(a, trainLosses(cached))).toBeLessThanOrEqual(TOL);
    const last = (d: string) => paramsOf(path.join(d, 'checkpoints', 'step-6', 'params.safetensors'));
    expect(maxAbsDiff(last(uncached), last(cached))).toBeLessThanOrEqual(TOL);

    // The comparison can fail: dropout is active (a dropout-0 run differs), and dropping out below
    // layer k as well (a folder built without cacheFrozen, same seed) gives other losses.
    const still = path.join(root, 'no-dropout');
    const everywhere = path.join(root, 'everywhere');
    const artNoDropout = path.join(root, 'art0');
    const artEverywhere = path.join(root, 'art-all');
    generateArtifacts({ model, train: 'layernorm@last', task: 'sst2', out: artNoDropout, dropout: 0, tokenizer: VOCAB, cacheFrozen: true });
    generateArtifacts({ model, train: 'layernorm@last', task: 'sst2', out: artEverywhere, dropout: 0.1, dropoutSeed: 1234, tokenizer: VOCAB });
    await trainLogged({ ...accum, artifacts: artNoDropout, out: still, cacheFrozen: true });
    await trainLogged({ ...accum, artifacts: artEverywhere, out: everywhere });
    expect(maxDiff(a, trainLosses(still))).toBeGreaterThan(1e-4);
    expect(maxDiff(a, trainLosses(everywhere))).toBeGreaterThan(1e-4);
  });
});

describe('bad input', () => {
  it('trains uncached, saying so, when the selection trains the embeddings', async () => {
    const out = path.join(tmpDir('modtune-cf-emb-'), 'run');
    const log = await trainLogged({ ...run, model, train: 'layernorm', maxSteps: 2, out, cacheFrozen: true });
    expect(log).toContain('--cache-frozen: nothing to cache: the selection trains the embeddings (bert.embeddings.LayerNorm.weight), which no frozen layer lies below; training without the cache');
    expect(trainLosses(out)).toHaveLength(2);
  });

  it('refuses the ort-web backend, before writing anything', async () => {
    const out = path.join(tmpDir('modtune-cf-ort-'), 'run');
    expect(await trainFails({ ...quiet, ...run, model, train: 'layernorm@last', backend: 'ort-web', out, cacheFrozen: true }))
      .toBe("--cache-frozen runs on the native backend only: the ort-web backend trains ONNX Runtime's own training artifacts, which take token ids; use --backend native");
    expect(fs.existsSync(out)).toBe(false);
  });

  it('refuses artifacts built without the frozen-prefix models when a frozen layer lies below the selection', async () => {
    const art = path.join(tmpDir('modtune-cf-old-'), 'art');
    generateArtifacts({ model, train: 'layernorm@last', task: 'sst2', out: art, dropout: 0, tokenizer: VOCAB });
    const out = path.join(path.dirname(art), 'run');
    expect(await trainFails({ ...quiet, ...run, artifacts: art, out, cacheFrozen: true }))
      .toBe(`--cache-frozen: the artifacts in ${art} have no frozen-prefix models (manifest.json has no 'native.frozenPrefix'); rebuild them with modtune artifacts --cache-frozen, or train from the model`);
    expect(fs.existsSync(out)).toBe(false);
  });

  it('refuses a budget that is not a positive number of MiB', async () => {
    expect(await trainFails({ ...quiet, ...run, model, train: 'layernorm@last', cacheFrozen: true, cacheBudget: 0 })).toBe('--cache-budget must be a positive number of MiB, got 0');
  });

  it('works from the command line', async () => {
    const out = path.join(tmpDir('modtune-cf-cli-'), 'run');
    const r = await runCli(['train', model, '--train', 'layernorm@last', '--task', 'sst2', '--data', GLUE, '--limit-train', '16', '--limit-eval', '8',
      '--batch-size', '8', '--max-steps', '2', '--threads', '1', '--cache-frozen', '--cache-budget', '64', '--out', out]);
    expect(r.stderr).toMatch(/--cache-frozen: the embeddings and layer 0 ran once over 24 examples/);
    expect(r.code).toBe(0);
    const bad = await runCli(['train', model, '--train', 'layernorm@last', '--task', 'sst2', '--cache-budget', 'lots']);
    expect(bad.stderr.trim()).toBe("modtune: --cache-budget must be a number, got 'lots'");
    expect(bad.code).not.toBe(0);
  });
});

describe('sweep --cache-frozen', () => {
  it('passes the option to every cell (grid.json field or flag), each cell caching what it can', async () => {
    const root = tmpDir('modtune-cf-sweep-');
    const gridFile = path.join(root, 'grid.json');
    fs.writeFileSync(gridFile, JSON.stringify({ cacheFrozen: 'yes' }));
    expect(() => readGridFile(gridFile)).toThrow(`${gridFile}: field 'cacheFrozen': expected a boolean, got "yes"`);
    fs.writeFileSync(gridFile, JSON.stringify({ cacheFrozen: true }));
    expect(readGridFile(gridFile)).toEqual({ cacheFrozen: true });

    const out = path.join(root, 'sweep');
    const r = await sweep({
      model, data: GLUE, cacheDir: false, out, tasks: ['rte'], train: ['layernorm@1', 'bias'], seeds: [42], lr: [1e-2],
      epochs: 1, limitTrain: 16, limitEval: 8, batchSize: 8, dropout: 0, cacheFrozen: true, workers: 1, log: () => {},
    });
    expect(r).toMatchObject({ total: 2, done: 2, failed: 0 });
    const cell = (id: string) => ({ cfg: readConfig(path.join(out, 'runs', id)), log: fs.readFileSync(path.join(out, 'logs', `${id}.log`), 'utf8') });
    const top = cell('RTE-layernorm@1-s42-lr1e-2');
    expect(top.cfg.cacheFrozen).toBe(true);
    expect(top.log).toMatch(/--cache-frozen: the embeddings and layer 0 ran once over 24 examples/);
    const bias = cell('RTE-bias-s42-lr1e-2');
    expect(bias.cfg.cacheFrozen).toBe(true);
    expect(bias.log).toMatch(/--cache-frozen: nothing to cache: the selection trains the embeddings \(bert\.embeddings\.\S+\.bias\)/);
  });
});
