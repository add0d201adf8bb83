import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { readDelta } from '../../src/export/delta.js';
import { exportDelta } from '../../src/export/export.js';
import { mergeFiles } from '../../src/export/merge.js';
import { META_MULTITASK, MultiTaskMeta } from '../../src/export/metadata.js';
import { serveModelFiles } from '../../src/export/multitask.js';
import { loadModel } from '../../src/onnx/io.js';
import { Predictor } from '../../src/predict/predictor.js';
import { tmpDir, TOKENIZER_JSON } from '../helpers/paths.js';
import { batchFeeds, fakeRun, maxAbsDiff, modelLogits, SAMPLE, writeBase } from './helpers.js';

let dir: string;

beforeAll(() => {
  dir = tmpDir('modtune-multi-');
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

interface Task { delta: string; merged: string }

/** Export + merge one fabricated run. */
function task(base: string, name: string, opts: Omit<Parameters<typeof fakeRun>[0], 'base' | 'dir'>, diff = false): Task {
  const run = fakeRun({ base, dir: path.join(dir, name), ...opts });
  const delta = exportDelta({ run: run.dir, out: path.join(run.dir, 'delta'), diff }).dir;
  const merged = path.join(run.dir, 'tuned.onnx');
  mergeFiles({ base, delta, out: merged });
  return { delta, merged };
}

const SST = ['a gripping, beautifully shot film', 'dull and far too long'];
const PAIRS: [string, string][] = [['A man is playing a guitar.', 'A man plays music.'], ['The cat sat on the mat.', 'Stocks fell sharply on Monday.']];

describe('serve-model: one model, tasks switched by fed tensors', () => {
  let base: string;
  let tasks: Task[];
  let multi: string;

  beforeAll(() => {
    base = writeBase(path.join(dir, 'a'));
    tasks = [
      task(base, 'sst', { train: 'layernorm', task: 'sst2' }),
      task(base, 'mnli', { train: 'bias@1', task: 'mnli' }, true),
      task(base, 'stsb', { train: 'attention@0', task: 'stsb', tokenizer: TOKENIZER_JSON }),
    ];
    multi = path.join(dir, 'a', 'multi.onnx');
    serveModelFiles({ base, deltas: tasks.map((t) => t.delta), out: multi });
  });

  it('stores the touched tensors as inputs with base-valued initializers of the same name (IR ≥ 4)', () => {
    const model = loadModel(multi);
    expect(model.irVersion).toBeGreaterThanOrEqual(4);
    const meta = JSON.parse(model.metadata[META_MULTITASK]!) as MultiTaskMeta;
    expect(meta.tasks.map((t) => t.name)).toEqual(['SST-2', 'MNLI', 'STS-B']);
    expect(meta.maxLabels).toBe(3);
    const inputs = new Set(model.graph.inputs.map((i) => i.name));
    for (const s of meta.switchable) {
      expect(inputs.has(s.name), s.name).toBe(true);
      expect(model.graph.initializers.get(s.name)!.dims).toEqual(s.shape);
    }
    // Exactly the union of what the deltas touch (each has the head).
    const touched = new Set(tasks.flatMap((t) => readDelta(t.delta).manifest.parameters.map((p) => p.name)));
    expect(new Set(meta.switchable.map((s) => s.name))).toEqual(touched);
    expect(touched.size).toBeGreaterThan(20);
    expect(meta.switchable.find((s) => s.name === 'classifier.weight')).toEqual({ name: 'classifier.weight', shape: [3, 16], padded: true });
    // Frozen weights are stored once: the multi model is hardly bigger than one merged model.
    expect(fs.statSync(multi).size).toBeLessThan(fs.statSync(tasks[0]!.merged).size * 1.05);
  });

  for (const runtime of ['node', 'web'] as const) {
    it(`gives each task the merged model's outputs (≤ 1e-5) on onnxruntime-${runtime}, switching without a new session`, async () => {
      const p = await Predictor.load({ base: multi, deltas: tasks.map((t) => t.delta), runtime });
      const session = (p as unknown as { session: object }).session;
      expect(p.tasks).toEqual(['SST-2', 'MNLI', 'STS-B']);
      const inputs = [SST, PAIRS, PAIRS];
      const expected: number[][][] = [];
      for (const [i, t] of tasks.entries()) {
        const merged = await Predictor.load({ base: t.merged, runtime });
        expected.push((await merged.predict(inputs[i]!)).map((x) => x.logits));
        await merged.release();
      }
      // Twice round, so every switch direction happens.
      for (const i of [0, 1, 2, 1, 0, 2]) {
        p.useTask(p.tasks[i]!);
        const got = (await p.predict(inputs[i]!)).map((x) => x.logits);
        expect(got[0]).toHaveLength([2, 3, 1][i]!);
        expect(maxAbsDiff(got.flat(), expected[i]!.flat()), p.tasks[i]).toBeLessThanOrEqual(1e-5);
      }
      expect((p as unknown as { session: object }).session).toBe(session);
      // Built in memory from the base model and the deltas: the same outputs.
      const direct = await Predictor.load({ base, deltas: tasks.map((t) => t.delta), runtime });
      direct.useTask('MNLI');
      expect(maxAbsDiff((await direct.predict(PAIRS)).flatMap((x) => x.logits), expected[1]!.flat())).toBeLessThanOrEqual(1e-5);
      await Promise.all([p.release(), direct.release()]);
    });
  }
});

describe('serve-model with a base that has its own head', () => {
  it('defaults to the base head (ORT uses the initializers when nothing is fed); tasks with fewer labels are padded', async () => {
    const base = writeBase(path.join(dir, 'b'), { numLabels: 3 });
    const keep = task(base, 'keep', { train: 'layernorm@0', task: 'mnli', freezeHead: true });
    const fresh = task(base, 'fresh', { train: 'layernorm@1', task: 'rte', newHead: true });
    const multi = path.join(dir, 'b', 'multi.onnx');
    serveModelFiles({ base, deltas: [keep.delta, fresh.delta], out: multi });
    // Fed nothing but the text inputs, ONNX Runtime takes every switchable tensor's default: the base model.
    const session = await ort.InferenceSession.create(multi, { logSeverityLevel: 3 });
    expect([...session.inputNames].sort()).toEqual(['attention_mask', 'input_ids', 'token_type_ids']);
    const unfed = (await session.run(batchFeeds(SAMPLE))).logits!.data as Float32Array;
    await session.release();
    expect(maxAbsDiff(unfed, await modelLogits(base, SAMPLE))).toBeLessThanOrEqual(1e-6);

    const p = await Predictor.load({ base: multi, deltas: [keep.delta, fresh.delta] });
    for (const [name, t] of [['MNLI', keep], ['RTE', fresh]] as const) {
      p.useTask(name);
      const merged = await Predictor.load({ base: t.merged });
      const a = (await p.predict(PAIRS)).flatMap((x) => x.logits);
      const b = (await merged.predict(PAIRS)).flatMap((x) => x.logits);
      expect(a).toHaveLength(name === 'MNLI' ? 6 : 4);
      expect(maxAbsDiff(a, b), name).toBeLessThanOrEqual(1e-5);
      await merged.release();
    }
    await p.release();
  });

  it('pads the base head into a wider head when a kept head has fewer labels than another task', async () => {
    const base = writeBase(path.join(dir, 'd'), { numLabels: 2 });
    const keep = task(base, 'd-keep', { train: 'layernorm@1', task: 'sst2', freezeHead: true });
    const wide = task(base, 'd-wide', { train: 'layernorm@0', task: 'mnli', newHead: true });
    const multi = path.join(dir, 'd', 'multi.onnx');
    serveModelFiles({ base, deltas: [keep.delta, wide.delta], out: multi });
    const session = await ort.InferenceSession.create(multi, { logSeverityLevel: 3 });
    const unfed = (await session.run(batchFeeds(SAMPLE))).logits!;
    await session.release();
    expect(unfed.dims).toEqual([2, 3]);
    const baseLogits = await modelLogits(base, SAMPLE);
    const rows = Array.from(unfed.data as Float32Array);
    // Columns 0-1: the base head; column 2: the zero padding row.
    expect(maxAbsDiff([rows[0]!, rows[1]!, rows[3]!, rows[4]!], baseLogits)).toBeLessThanOrEqual(1e-6);
    expect([rows[2], rows[5]]).toEqual([0, 0]);
    const p = await Predictor.load({ base: multi, deltas: [keep.delta, wide.delta] });
    for (const [name, t, inputs] of [['SST-2', keep, SST], ['MNLI', wide, PAIRS]] as const) {
      p.useTask(name);
      const merged = await Predictor.load({ base: t.merged });
      const a = (await p.predict(inputs as never)).flatMap((x) => x.logits);
      expect(maxAbsDiff(a, (await merged.predict(inputs as never)).flatMap((x) => x.logits)), name).toBeLessThanOrEqual(1e-5);
      await merged.release();
    }
    await p.release();
  });

  it('refuses deltas the multi-task model cannot serve', async () => {
    const base = writeBase(path.join(dir, 'c'));
    const small = task(base, 'c-sst', { train: 'layernorm@0', task: 'sst2' });
    const other = task(base, 'c-mnli', { train: 'attention@1', task: 'mnli' });
    const multi = path.join(dir, 'c', 'multi.onnx');
    serveModelFiles({ base, deltas: [small.delta], out: multi });
    await expect(Predictor.load({ base: multi, deltas: [other.delta] })).rejects.toThrow(/the task has 3 labels, the multi-task model's head at most 2/);
    const sst2b = task(base, 'c-sst-b', { train: 'layernorm@1', task: 'sst2' });
    await expect(Predictor.load({ base: multi, deltas: [sst2b.delta] })).rejects.toThrow(/parameter 'bert\.encoder\.layer\.1\.attention\.output\.LayerNorm\.weight' is not switchable/);
    await expect(Predictor.load({ base: multi })).rejects.toThrow(/a multi-task model; give the delta folders/);
    const otherBase = writeBase(path.join(dir, 'c2'), { seed: 5 });
    expect(() => serveModelFiles({ base: otherBase, deltas: [small.delta], out: path.join(dir, 'c2', 'm.onnx') })).toThrow(/made for base sha256/);
  });
});
