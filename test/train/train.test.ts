import { beforeAll, describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { readManifest } from '../../src/artifacts/generate.js';
import { readGlueSplit } from '../../src/data/glue-reader.js';
import { loadTokenizer } from '../../src/data/tokenizer.js';
import {
  evaluateRun, listCheckpoints, readConfig, readLatestCheckpoint, readMetrics, readSummary, train,
  type EvalRecord, type TrainRecord, type TrainSummary,
} from '../../src/train/index.js';
import { GLUE, tmpDir, VOCAB } from '../helpers/paths.js';
import { maxAbsDiff, paramsOf, snapshot, tinyArtifacts, writeTinyModel } from './helpers.js';

const quiet = { cacheDir: false as const, data: GLUE, threads: 1 };
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

/** Logits of the eval model for each example alone (batch 1, no padding), fed by hand. */
async function independentLogits(artifacts: string, params: Map<string, Float32Array>, task: string, n: number): Promise<{ logits: Float32Array[]; labels: number[] }> {
  const manifest = readManifest(artifacts);
  const session = await ort.InferenceSession.create(path.join(artifacts, 'native/eval.onnx'));
  const tokenizer = loadTokenizer(VOCAB);
  const examples = readGlueSplit(task, 'dev', GLUE).examples.slice(0, n);
  const logits: Float32Array[] = [];
  for (const e of examples) {
    const enc = tokenizer.encode(e.textA, e.textB, 128);
    const len = enc.inputIds.length;
    const feeds: Record<string, ort.Tensor> = {
      input_ids: new ort.Tensor('int64', BigInt64Array.from(enc.inputIds, BigInt), [1, len]),
      attention_mask: new ort.Tensor('int64', new BigInt64Array(len).fill(1n), [1, len]),
      token_type_ids: new ort.Tensor('int64', BigInt64Array.from(enc.tokenTypeIds, BigInt), [1, len]),
      labels: manifest.task.head.kind === 'regression' ? new ort.Tensor('float32', Float32Array.of(e.label!), [1]) : new ort.Tensor('int64', BigInt64Array.of(BigInt(e.label!)), [1]),
    };
    for (const p of manifest.parameters) feeds[p.name] = new ort.Tensor('float32', params.get(p.name)!, p.shape);
    logits.push((await session.run(feeds)).logits!.data as Float32Array);
  }
  await session.release();
  return { logits, labels: examples.map((e) => e.label!) };
}

describe('train: a short SST-2 run', () => {
  let artifacts: string;
  let run: string;
  let summary: TrainSummary;

  beforeAll(async () => {
    artifacts = tinyArtifacts({ task: 'sst2', train: 'attention' });
    run = path.join(tmpDir(), 'run');
    summary = await train({ ...quiet, artifacts, task: 'sst2', limitTrain: 64, limitEval: 32, batchSize: 8, epochs: 8, lr: 1e-2, out: run });
  });

  it('lowers the training loss on 64 examples', () => {
    const losses = readMetrics(run).filter((r): r is TrainRecord => r.type === 'train').map((r) => r.loss);
    expect(losses).toHaveLength(64);
    const first = mean(losses.slice(0, 8));
    const last = mean(losses.slice(-8));
    expect(first).toBeGreaterThan(0.65);
    expect(last).toBeLessThan(first - 0.15);
  });

  it('writes the run folder of the contract', () => {
    expect(fs.readdirSync(run).sort()).toEqual(['best', 'checkpoints', 'config.json', 'metrics.jsonl', 'summary.json']);
    const cfg = readConfig(run);
    expect(cfg).toMatchObject({
      task: 'SST-2', artifacts, artifactsBuilt: false, model: null, train: 'attention', backend: 'native', device: 'cpu', seed: 42,
      batchSize: 8, gradAccum: 1, epochs: 8, lr: 1e-2, lrSchedule: 'linear', optimizer: 'adamw', weightDecay: 0.01, dropout: 0, maxLength: 128,
      limitTrain: 64, limitEval: 32, tokenizer: path.join(artifacts, 'vocab.txt'),
      totals: { trainExamples: 64, batchesPerEpoch: 8, stepsPerEpoch: 8, totalSteps: 64, warmupSteps: 0, evalExamples: { dev: 32 } },
    });

    const records = readMetrics(run);
    const trains = records.filter((r): r is TrainRecord => r.type === 'train');
    expect(trains.map((r) => r.step)).toEqual(Array.from({ length: 64 }, (_, i) => i + 1));
    expect(trains[3]).toMatchObject({ epoch: 0.5, lr: 1e-2 * (61 / 64) });
    for (const r of trains) expect(Object.keys(r).sort()).toEqual(['elapsedSec', 'epoch', 'examplesPerSec', 'loss', 'lr', 'step', 'type']);
    const evals = records.filter((r): r is EvalRecord => r.type === 'eval');
    expect(evals.map((r) => [r.step, r.epoch, r.split])).toEqual(Array.from({ length: 8 }, (_, i) => [8 * (i + 1), i + 1, 'dev']));
    for (const e of evals) expect(e.main).toBe(e.metrics.accuracy);

    // best/ holds the first evaluation with the highest accuracy, and its parameters.
    const top = Math.max(...evals.map((e) => e.main));
    const bestEval = evals.find((e) => e.main === top)!;
    const bestRecord = JSON.parse(fs.readFileSync(path.join(run, 'best/metrics.json'), 'utf8'));
    expect(bestRecord).toEqual({ step: bestEval.step, main: top, metrics: bestEval.metrics });
    // Checkpoints: LATEST is the last step; kept are the newest two and the best one.
    expect(fs.readFileSync(path.join(run, 'checkpoints/LATEST'), 'utf8').trim()).toBe('step-64');
    expect(listCheckpoints(run)).toEqual([...new Set([bestEval.step, 56, 64])].sort((a, b) => a - b));
    for (const s of listCheckpoints(run)) {
      expect(fs.readdirSync(path.join(run, `checkpoints/step-${s}`)).sort()).toEqual(['optimizer.safetensors', 'params.safetensors', 'state.json']);
    }
    expect(maxAbsDiff(paramsOf(path.join(run, 'best/params.safetensors')), paramsOf(path.join(run, `checkpoints/step-${bestEval.step}/params.safetensors`)))).toBe(0);
    const last = readLatestCheckpoint(run)!;
    const manifest = readManifest(artifacts);
    expect([...last.parameters.keys()].sort()).toEqual(manifest.parameters.map((p) => p.name).sort());
    expect([...last.optimizer.keys()].sort()).toEqual(manifest.parameters.flatMap((p) => [`${p.name}.exp_avg`, `${p.name}.exp_avg_sq`]).sort());
    expect(last.state).toMatchObject({ version: 1, step: 64, epoch: 8, best: bestRecord, metrics: evals[7]!.metrics, data: { epoch: 7, position: 8, size: 64, batchSize: 8 } });

    expect(readSummary(run)).toEqual(summary);
    expect(summary).toMatchObject({
      task: 'SST-2', selection: 'attention', trainableCount: manifest.selection.trainableCount, totalCount: manifest.selection.totalCount,
      steps: 64, epochs: 8, bestStep: bestEval.step, bestMetrics: bestEval.metrics, finalMetrics: evals[7]!.metrics, backend: 'native', status: 'completed',
    });
    expect(summary.examplesPerSec).toBeGreaterThan(0);
  });

  it('evaluates a run to the same metrics as the eval model run by hand, example by example', async () => {
    const r = await evaluateRun({ dir: run, limitEval: 32, cacheDir: false, data: GLUE, threads: 1 });
    const best = JSON.parse(fs.readFileSync(path.join(run, 'best/metrics.json'), 'utf8'));
    expect(r.source).toMatchObject({ kind: 'run', checkpoint: 'best', step: best.step });
    const { logits, labels } = await independentLogits(artifacts, paramsOf(path.join(run, 'best/params.safetensors')), 'sst2', 32);
    const correct = logits.filter((l, i) => (l[1]! > l[0]! ? 1 : 0) === labels[i]).length;
    expect(r.metrics).toEqual({ accuracy: correct / 32 });
    expect(r.metrics).toEqual(best.metrics);
    // Step N picks that checkpoint.
    const r56 = await evaluateRun({ dir: run, checkpoint: '56', limitEval: 32, cacheDir: false, data: GLUE, threads: 1 });
    expect(r56.source.step).toBe(56);
    const evals = readMetrics(run).filter((x): x is EvalRecord => x.type === 'eval');
    expect(r56.metrics).toEqual(evals.find((e) => e.step === 56)!.metrics);
  });

  it('with --early-stop 1, stops at the first evaluation that does not improve', async () => {
    const out = path.join(tmpDir(), 'run');
    const s = await train({ ...quiet, artifacts, task: 'sst2', limitTrain: 64, limitEval: 32, batchSize: 8, epochs: 8, lr: 1e-2, earlyStop: 1, out });
    const evals = readMetrics(run).filter((x): x is EvalRecord => x.type === 'eval').map((e) => e.main);
    // Same seed and data as the full run: the same evaluations, up to the first non-improvement.
    let stop = 1;
    while (stop < evals.length && evals[stop]! > Math.max(...evals.slice(0, stop))) stop++;
    expect(s.status).toBe(stop < evals.length ? 'early-stopped' : 'completed');
    expect(s.steps).toBe(8 * Math.min(stop + 1, 8));
  });
});

describe('train: numerics', () => {
  it('gradient accumulation 2 × batch 4 gives the update of batch 8', async () => {
    const artifacts = tinyArtifacts({ task: 'sst2', train: 'attention,layernorm', optimizer: 'sgd' });
    const runs: Record<string, string> = {};
    for (const [name, batchSize, gradAccum] of [['whole', 8, 1], ['accumulated', 4, 2]] as const) {
      runs[name] = path.join(tmpDir(), name);
      await train({ ...quiet, artifacts, task: 'sst2', limitTrain: 16, limitEval: 4, batchSize, gradAccum, maxSteps: 1, lr: 0.5, out: runs[name] });
    }
    const whole = paramsOf(path.join(runs.whole!, 'checkpoints/step-1/params.safetensors'));
    const accumulated = paramsOf(path.join(runs.accumulated!, 'checkpoints/step-1/params.safetensors'));
    const initial = paramsOf(path.join(artifacts, 'params.safetensors'));
    const moved = maxAbsDiff(whole, initial);
    expect(moved).toBeGreaterThan(1e-3);
    expect(maxAbsDiff(whole, accumulated)).toBeLessThan(moved * 1e-4);
    const loss = (dir: string) => (readMetrics(dir)[0] as TrainRecord).loss;
    expect(loss(runs.accumulated!)).toBeCloseTo(loss(runs.whole!), 6);
  });

  it('stops on a non-finite loss, naming the step, keeping the last good checkpoint, suggesting a lower --lr', async () => {
    const artifacts = tinyArtifacts({ task: 'sst2', train: 'attention' });
    const out = path.join(tmpDir(), 'run');
    const err = await train({ ...quiet, artifacts, task: 'sst2', limitTrain: 64, limitEval: 8, batchSize: 8, epochs: 2, lr: 1e9, saveEvery: 1, out }).catch((e: Error) => e);
    expect(err).toBeInstanceOf(Error);
    const m = /training stopped: the loss is (NaN|-?Infinity) at step (\d+) \(learning rate [^)]+\); the last good checkpoint \(step (\d+)\) is kept in (\S+)\. Try a lower --lr/.exec((err as Error).message);
    expect(m, (err as Error).message).not.toBeNull();
    expect(Number(m![3])).toBe(Number(m![2]) - 1);
    const ck = readLatestCheckpoint(out)!;
    expect(ck.dir).toBe(m![4]);
    expect(ck.state.step).toBe(Number(m![3]));
    for (const t of ck.parameters.values()) expect(t.every(Number.isFinite)).toBe(true);
    expect(fs.existsSync(path.join(out, 'summary.json'))).toBe(false);

    const out2 = path.join(tmpDir(), 'run');
    const err2 = await train({ ...quiet, artifacts, task: 'sst2', limitTrain: 64, limitEval: 8, batchSize: 8, epochs: 2, lr: 1e9, out: out2 }).catch((e: Error) => e);
    expect((err2 as Error).message).toMatch(/the loss is (NaN|-?Infinity) at step \d+ .*no checkpoint had been written yet\. Try a lower --lr \(this run: 1000000000\)/);
  });

  it('scores a regression task (STS-B) with Pearson/Spearman of the raw scores', async () => {
    const artifacts = tinyArtifacts({ task: 'stsb', train: 'layernorm' }, { regression: true });
    const r = await evaluateRun({ dir: artifacts, limitEval: 40, cacheDir: false, data: GLUE, threads: 1 });
    expect(r.source.kind).toBe('artifacts');
    const { logits, labels } = await independentLogits(artifacts, paramsOf(path.join(artifacts, 'params.safetensors')), 'stsb', 40);
    const x = logits.map((l) => l[0]!);
    const mx = mean(x);
    const my = mean(labels);
    const cov = x.reduce((s, v, i) => s + (v - mx) * (labels[i]! - my), 0);
    const pearson = cov / Math.sqrt(x.reduce((s, v) => s + (v - mx) ** 2, 0) * labels.reduce((s, v) => s + (v - my) ** 2, 0));
    expect(r.metrics!.pearson).toBeCloseTo(pearson, 5);
    expect(Object.keys(r.metrics!).sort()).toEqual(['pearson', 'spearman']);
  });
});

/** A small MNLI folder in the official layout, with sentences from RTE. */
function fakeMnli(root: string, sizes: { train: number; dev: number; test: number }): void {
  const rte = readGlueSplit('rte', 'train', GLUE).examples;
  const labels = ['entailment', 'neutral', 'contradiction'];
  const row = (i: number, cols: number, label?: string) => {
    const e = rte[i % rte.length]!;
    const cells = [String(i), `p${i}`, `${i}n`, 'fiction', '(x)', '(y)', '(X)', '(Y)', e.textA, e.textB!];
    while (cells.length < cols - (label ? 1 : 0)) cells.push('');
    if (label) cells.push(label);
    return cells.join('\t');
  };
  const header = (cols: number, last?: string) => {
    const h = ['index', 'promptID', 'pairID', 'genre', 'sentence1_binary_parse', 'sentence2_binary_parse', 'sentence1_parse', 'sentence2_parse', 'sentence1', 'sentence2'];
    while (h.length < cols - (last ? 1 : 0)) h.push(`label${h.length - 9}`);
    if (last) h.push(last);
    return h.join('\t');
  };
  const write = (file: string, cols: number, n: number, labelled: boolean, offset: number) => {
    const lines = [header(cols, labelled ? 'gold_label' : undefined)];
    for (let i = 0; i < n; i++) lines.push(row(offset + i, cols, labelled ? labels[(offset + i) % 3] : undefined));
    fs.writeFileSync(path.join(root, 'MNLI', file), `${lines.join('\n')}\n`);
  };
  fs.mkdirSync(path.join(root, 'MNLI'), { recursive: true });
  write('train.tsv', 12, sizes.train, true, 0);
  write('dev_matched.tsv', 16, sizes.dev, true, 1000);
  write('dev_mismatched.tsv', 16, sizes.dev, true, 2000);
  write('test_matched.tsv', 10, sizes.test, false, 3000);
  write('test_mismatched.tsv', 10, sizes.test, false, 4000);
}

describe('train: MNLI and its two dev sets', () => {
  it('evaluates both dev sets, picks the best by the matched one, and writes both submission files', async () => {
    const data = tmpDir();
    fakeMnli(data, { train: 24, dev: 12, test: 7 });
    const artifacts = tinyArtifacts({ task: 'mnli', train: 'layernorm' }, { numLabels: 3 });
    const out = path.join(tmpDir(), 'run');
    const s = await train({ artifacts, task: 'mnli', data, cacheDir: false, threads: 1, batchSize: 8, epochs: 2, lr: 1e-2, out });
    const evals = readMetrics(out).filter((r): r is EvalRecord => r.type === 'eval');
    expect(evals.map((e) => [e.step, e.split])).toEqual([[3, 'dev_matched'], [3, 'dev_mismatched'], [6, 'dev_matched'], [6, 'dev_mismatched']]);
    expect(readConfig(out).totals.evalExamples).toEqual({ dev_matched: 12, dev_mismatched: 12 });
    expect(s.finalMetrics).toEqual({ accuracy: evals[2]!.metrics.accuracy, 'dev_mismatched/accuracy': evals[3]!.metrics.accuracy });
    const matched = evals.filter((e) => e.split === 'dev_matched');
    const bestStep = matched[1]!.main > matched[0]!.main ? 6 : 3;
    expect(s.bestStep).toBe(bestStep);

    const sub = path.join(tmpDir(), 'submission') + path.sep;
    const r = await evaluateRun({ dir: out, split: 'test', data, out: sub, cacheDir: false, threads: 1 });
    expect(r.files!.map((f) => [path.basename(f.file), f.rows])).toEqual([['MNLI-m.tsv', 7], ['MNLI-mm.tsv', 7]]);
    const lines = fs.readFileSync(path.join(sub, 'MNLI-mm.tsv'), 'utf8').trimEnd().split('\n');
    expect(lines[0]).toBe('index\tprediction');
    expect(lines.slice(1).map((l) => l.split('\t')[0])).toEqual(['4000', '4001', '4002', '4003', '4004', '4005', '4006']);
    expect(lines.slice(1).every((l) => /\t(entailment|neutral|contradiction)$/.test(l))).toBe(true);
  });
});

describe('train: bad input fails before anything is written', () => {
  let artifacts: string;
  let modelDir: string;
  beforeAll(() => {
    artifacts = tinyArtifacts({ task: 'sst2', train: 'layernorm' });
    modelDir = tmpDir();
    writeTinyModel(modelDir, { numLabels: 3 });
  });
  const fails = (o: Parameters<typeof train>[0]) => train({ ...quiet, limitTrain: 8, limitEval: 8, ...o }).then(() => new Error('no error'), (e: Error) => e.message);

  it('names the problem: task, data, labels, backend, device, options the artifacts fix', async () => {
    const out = path.join(tmpDir(), 'run');
    expect(await fails({ artifacts, task: 'sst5', out })).toMatch(/unknown GLUE task 'sst5': expected one of CoLA, SST-2/);
    expect(await fails({ artifacts, task: 'sst2', out, data: tmpDir() })).toMatch(/GLUE SST-2 data not found .*--data DIR/);
    expect(await fails({ artifacts, task: 'mnli', out })).toMatch(/artifacts in .* have a 2-label classification head \(0, 1\), but task MNLI has 3 labels \(entailment, neutral, contradiction\)/);
    expect(await fails({ artifacts, task: 'stsb', out })).toMatch(/2-label classification head .* but task STS-B is a regression task \(1 output\)/);
    expect(await fails({ model: path.join(modelDir, 'model.onnx'), train: 'layernorm', task: 'sst2', out }))
      .toMatch(/task SST-2 has 2 labels \(0, 1\): .*classification head .* has 3 labels .*--new-head/);
    expect(await fails({ artifacts, task: 'sst2', out, backend: 'tpu' as never })).toMatch(/unknown --backend 'tpu': expected native or ort-web/);
    expect(await fails({ artifacts, task: 'sst2', out, weightDecay: 0.1 })).toMatch(/--weight-decay 0.1: the artifacts .* were built with weight decay 0.01/);
    expect(await fails({ artifacts, task: 'sst2', out, batchSize: 0 })).toMatch(/--batch-size must be a positive integer/);
    expect(await fails({ task: 'sst2', out })).toMatch(/nothing to train/);
    const bare = tinyArtifacts({ task: 'sst2', train: 'layernorm', tokenizer: undefined }, { tokenizerBeside: false });
    expect(await fails({ artifacts: bare, task: 'sst2', out })).toMatch(/the artifacts in .* name no tokenizer; pass --tokenizer PATH \(tokenizer.json or vocab.txt\)/);
    expect(fs.existsSync(out)).toBe(false);
  });

  it('refuses a tokenizer with more entries than the model has embedding rows, before any run folder exists', async () => {
    const out = path.join(tmpDir(), 'run');
    const small = writeTinyModel(tmpDir(), { vocabSize: 1000, tokenizerBeside: false });
    expect(await fails({ model: small, train: 'layernorm', task: 'sst2', tokenizer: VOCAB, out }))
      .toMatch(/vocab\.txt: the tokenizer has 30522 entries but the model's word embeddings have 1000 rows/);
    expect(fs.existsSync(out)).toBe(false);
  });

  it('--device cuda without ONNX Runtime\'s CUDA provider says how to install it', async () => {
    const providers = path.join(path.dirname(fileOf('onnxruntime-node')), '..', 'bin');
    const hasCuda = fs.existsSync(providers) && fs.readdirSync(providers, { recursive: true }).some((f) => String(f).includes('providers_cuda'));
    if (hasCuda) return; // a CUDA machine: nothing to refuse
    const out = path.join(tmpDir(), 'run');
    expect(await fails({ artifacts, task: 'sst2', out, device: 'cuda' })).toMatch(/--device cuda: .*--onnxruntime-node-install=cuda12/);
    expect(fs.existsSync(out)).toBe(false);
  });

  it('refuses to overwrite a run folder without --resume or --force, and changes nothing in it', async () => {
    const out = path.join(tmpDir(), 'run');
    await train({ ...quiet, artifacts, task: 'sst2', limitTrain: 8, limitEval: 8, batchSize: 8, maxSteps: 1, out });
    const before = snapshot(out);
    expect(await fails({ artifacts, task: 'sst2', out })).toMatch(/holds a run folder; pass --resume to continue it, pass --force to replace it, or choose another --out$/);
    expect(snapshot(out)).toEqual(before);
    expect(await fails({ out: tmpDir(), resume: true })).toMatch(/--resume: .* is not a run folder/);
    // A finished run resumes to its summary, untouched.
    expect(await train({ out, resume: true, cacheDir: false })).toEqual(readSummary(out));
    expect(snapshot(out)).toEqual(before);
  });
});

function fileOf(pkg: string): string {
  return new URL(import.meta.resolve(pkg)).pathname;
}
