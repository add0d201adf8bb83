import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { buildBert } from '../../src/bert/build.js';
import { presetConfig } from '../../src/bert/config.js';
import { readSafetensors, writeSafetensors } from '../../src/bert/safetensors.js';
import { generateArtifacts } from '../../src/artifacts/generate.js';
import { exportDelta } from '../../src/export/export.js';
import { readDelta } from '../../src/export/delta.js';
import { attachHead } from '../../src/heads/index.js';
import { discoverParameters } from '../../src/modules/index.js';
import { modelSha256, sha256File } from '../../src/onnx/hash.js';
import { loadModel, saveModel } from '../../src/onnx/io.js';
import { hfValues } from '../../src/export/params.js';
import { Rng } from '../../src/util/random.js';
import { tmpDir, VOCAB } from '../helpers/paths.js';
import { fakeRun, FakeRun, writeBase } from './helpers.js';

let dir: string;
let base: string;
let run: FakeRun;

beforeAll(() => {
  dir = tmpDir('modtune-export-');
  base = writeBase(dir);
  run = fakeRun({ base, dir: path.join(dir, 'run'), train: 'layernorm', task: 'sst2' });
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('exportDelta', () => {
  it('writes the best checkpoint values of exactly the trained parameters, with the facts to apply them', () => {
    const out = path.join(dir, 'delta-best');
    const r = exportDelta({ run: run.dir, out });
    const m = r.manifest;
    expect(m.format).toBe('modtune-delta');
    expect(m.version).toBe(1);
    expect(m.diff).toBe(false);
    expect(m.base.sha256).toBe(modelSha256(base));
    expect(m.base).toMatchObject({ family: 'bert', numLayers: 2, hiddenSize: 16, totalParameters: run.manifest.base.totalParameters });
    expect(m.task).toEqual({ name: 'SST-2', kind: 'single', labels: ['0', '1'], head: { kind: 'classification', numLabels: 2 }, newHead: true });
    expect(m.selection).toMatchObject({ spec: 'layernorm', trainableCount: run.manifest.selection.trainableCount });
    expect(m.checkpoint).toEqual({ name: 'best', step: run.bestStep, metrics: { accuracy: 0.875 }, main: 0.875 });
    // Exactly the manifest's trainable parameters: 5 LayerNorms × (weight, bias) + the new head.
    expect(m.parameters.map((p) => p.name).sort()).toEqual(run.manifest.parameters.map((p) => p.name).sort());
    expect(m.parameters.filter((p) => p.module === 'classifier').map((p) => p.name).sort()).toEqual(['classifier.bias', 'classifier.weight']);
    const stored = readSafetensors(path.join(out, 'delta.safetensors')).tensors;
    expect(stored.size).toBe(run.best.size);
    for (const [name, t] of run.best) {
      expect(stored.get(name)!.shape).toEqual(t.shape);
      expect(Array.from(stored.get(name)!.data)).toEqual(Array.from(t.data));
    }
    // The tokenizer travels with the delta, byte for byte.
    expect(m.tokenizer.file).toBe('vocab.txt');
    expect(sha256File(path.join(out, 'vocab.txt'))).toBe(sha256File(VOCAB));
    expect(m.tokenizer).toMatchObject({ sha256: sha256File(VOCAB), lowercase: true, maxLength: 64 });
    expect(m.tensors.sha256).toBe(sha256File(path.join(out, 'delta.safetensors')));
    expect(readDelta(out).sha256).toBe(m.tensors.sha256);
  });

  it('exports the last checkpoint or a step, with that step\'s dev metrics', () => {
    const last = exportDelta({ run: run.dir, checkpoint: 'last', out: path.join(dir, 'delta-last') });
    expect(last.manifest.checkpoint).toEqual({ name: `step-${run.lastStep}`, step: run.lastStep, metrics: { accuracy: 0.75 }, main: 0.75 });
    const values = readDelta(last.dir).tensors;
    for (const [name, t] of run.last) expect(Array.from(values.get(name)!.data)).toEqual(Array.from(t.data));
    // Step 10 has no eval line: the metrics come from its state.json.
    const ten = exportDelta({ run: run.dir, checkpoint: '10', out: path.join(dir, 'delta-10') });
    expect(ten.manifest.checkpoint).toMatchObject({ name: 'step-10', step: 10, metrics: { accuracy: 0.1 } });
    expect(() => exportDelta({ run: run.dir, checkpoint: '15', out: path.join(dir, 'x') })).toThrow(/no checkpoint step-15; the run has step-10, step-20, step-30/);
    expect(() => exportDelta({ run: run.dir, checkpoint: 'first', out: path.join(dir, 'x') })).toThrow(/--checkpoint should be best, last or a step number/);
  });

  it('--diff stores tuned − base, except a new head, which is stored as values', () => {
    const r = exportDelta({ run: run.dir, out: path.join(dir, 'delta-diff'), diff: true });
    const initial = readSafetensors(path.join(run.artifacts, 'params.safetensors')).tensors;
    const stored = readDelta(r.dir).tensors;
    for (const p of r.manifest.parameters) {
      const tuned = run.best.get(p.name)!.data;
      const got = stored.get(p.name)!.data;
      if (p.module === 'classifier') {
        expect(p.stored).toBe('value');
        expect(Array.from(got)).toEqual(Array.from(tuned));
      } else {
        expect(p.stored).toBe('diff');
        const base = initial.get(p.name)!.data;
        expect(Array.from(got)).toEqual(Array.from(tuned, (v, i) => Math.fround(v - base[i]!)));
      }
    }
  });

  it('refuses to overwrite a delta folder without --force', () => {
    const out = path.join(dir, 'delta-twice');
    exportDelta({ run: run.dir, out });
    expect(() => exportDelta({ run: run.dir, out })).toThrow(`--out ${out} holds a delta folder; pass --force to replace it, or choose another --out`);
    expect(exportDelta({ run: run.dir, out, force: true, diff: true }).manifest.diff).toBe(true);
  });

  it('--force replaces only a delta folder: never the run, a folder holding it, or a folder of the user\'s', () => {
    const before = fs.readdirSync(run.dir).sort();
    for (const out of [run.dir, dir]) {
      expect(() => exportDelta({ run: run.dir, out, force: true })).toThrow(new RegExp(`^--out ${out} (is|holds) the run`));
    }
    expect(() => exportDelta({ run: run.dir, out: run.artifacts, force: true })).toThrow(`--out ${run.artifacts} is the run's artifacts, an input of this command; choose another --out`);
    expect(fs.readdirSync(run.dir).sort()).toEqual(before);
    const mine = path.join(dir, 'mine');
    fs.mkdirSync(mine);
    fs.writeFileSync(path.join(mine, 'notes.txt'), 'mine');
    for (const force of [false, true]) {
      expect(() => exportDelta({ run: run.dir, out: mine, force })).toThrow(`--out ${mine} is not empty and is not a delta folder (no delta.json written by modtune); choose another --out (--force replaces only a delta folder)`);
    }
    expect(fs.readdirSync(mine)).toEqual(['notes.txt']);
  });

  it('says so when the run has no checkpoints yet, whichever --checkpoint', () => {
    const early = path.join(dir, 'run-early');
    fs.mkdirSync(early);
    fs.copyFileSync(path.join(run.dir, 'config.json'), path.join(early, 'config.json'));
    for (const checkpoint of ['best', 'last', '10']) {
      expect(() => exportDelta({ run: early, checkpoint, out: path.join(dir, 'x') }))
        .toThrow(`${early}: the run has no checkpoints yet (it stopped before its first one), so there is nothing to export; continue it with: modtune train --resume --out ${early}`);
    }
  });

  it('checks masked selections: masked-out entries must not have moved', () => {
    const masked = fakeRun({ base, dir: path.join(dir, 'run-masked'), train: 'attention@1:random=10%', task: 'sst2' });
    expect(masked.manifest.masks).not.toBeNull();
    const ok = exportDelta({ run: masked.dir, out: path.join(dir, 'delta-masked') });
    const maskedParam = ok.manifest.parameters.find((p) => p.trainableEntries < p.shape.reduce((a, b) => a * b, 1))!;
    expect(maskedParam).toBeDefined();
    // Corrupt the best checkpoint: move one entry that the mask freezes.
    const masks = readSafetensors(path.join(masked.artifacts, 'masks.safetensors')).tensors;
    const mask = masks.get(maskedParam.name)!.data;
    const frozen = mask.findIndex((v) => v === 0);
    const values = new Map(masked.best);
    const data = Float32Array.from(values.get(maskedParam.name)!.data);
    data[frozen]! += 0.5;
    values.set(maskedParam.name, { shape: maskedParam.shape, data });
    writeSafetensors(path.join(masked.dir, 'best', 'params.safetensors'), values);
    expect(() => exportDelta({ run: masked.dir, out: path.join(dir, 'delta-masked-bad') }))
      .toThrow(new RegExp(`'${maskedParam.name.replace(/\./g, '\\.')}' entry ${frozen} is frozen by its mask but moved`));
  });

  it('refuses a checkpoint with missing, foreign, misshapen or non-finite tensors', () => {
    const bad = fakeRun({ base, dir: path.join(dir, 'run-bad'), train: 'layernorm@0', task: 'sst2' });
    const file = path.join(bad.dir, 'best', 'params.safetensors');
    const [first, second] = [...bad.best.keys()];
    const write = (m: Map<string, { shape: number[]; data: Float32Array }>) => writeSafetensors(file, m);
    const out = path.join(dir, 'delta-bad');
    write(new Map([...bad.best].filter(([k]) => k !== first)));
    expect(() => exportDelta({ run: bad.dir, out })).toThrow(new RegExp(`trainable parameter '${first!.replace(/\./g, '\\.')}' is missing`));
    write(new Map([...bad.best, ['bert.pooler.dense.bias', { shape: [16], data: new Float32Array(16) }]]));
    expect(() => exportDelta({ run: bad.dir, out })).toThrow(/'bert\.pooler\.dense\.bias' is not a trainable parameter/);
    write(new Map([...bad.best, [second!, { shape: [4, 4], data: new Float32Array(16) }]]));
    expect(() => exportDelta({ run: bad.dir, out })).toThrow(/has shape \[4,4\], the artifacts say \[16\]/);
    write(new Map([...bad.best, [second!, { shape: [16], data: new Float32Array(16).fill(NaN) }]]));
    expect(() => exportDelta({ run: bad.dir, out })).toThrow(/entry 0 is NaN; expected finite numbers/);
    // The trainer may store tensors flat; same element order, so accepted and written in HF shape.
    write(new Map([...bad.best].map(([k, t]) => [k, { shape: [t.data.length], data: t.data }])));
    const flat = exportDelta({ run: bad.dir, out });
    expect(readSafetensors(path.join(flat.dir, 'delta.safetensors')).tensors.get('classifier.weight')!.shape).toEqual([2, 16]);
    expect(() => exportDelta({ run: path.join(dir, 'nope'), out })).toThrow(/run folder not found/);
    expect(() => exportDelta({ run: dir, out })).toThrow(/not a run folder \(no config\.json\)/);
  });

  it('a frozen new head is still in the delta (marked untrained), with the values the run used', () => {
    const frozen = fakeRun({ base, dir: path.join(dir, 'run-frozen-head'), train: 'layernorm', task: 'mnli', freezeHead: true });
    expect(frozen.manifest.parameters.some((p) => p.module === 'classifier')).toBe(false);
    const r = exportDelta({ run: frozen.dir, out: path.join(dir, 'delta-frozen-head') });
    const head = r.manifest.parameters.filter((p) => p.module === 'classifier');
    expect(head.map((p) => [p.name, p.trained, p.shape])).toEqual([['classifier.weight', false, [3, 16]], ['classifier.bias', false, [3]]]);
    // The same values as the head that generateArtifacts attached (seed 42).
    const infer = attachHead(loadModel(base), { kind: 'classification', numLabels: 3 }, { newHead: true, seed: 42, dropout: 0 }).infer;
    const expected = discoverParameters(infer).parameters.find((p) => p.hfName === 'classifier.weight')!;
    expect(Array.from(readDelta(r.dir).tensors.get('classifier.weight')!.data)).toEqual(Array.from(hfValues(infer, expected)));
  });
});

describe('delta size on bert-base', () => {
  it('a layernorm delta of bert-base is 25 LayerNorms × 2 × 768 floats plus the head: well under 200 KB', () => {
    const big = tmpDir('modtune-export-base-');
    try {
      const model = buildBert({ config: presetConfig('bert-base'), init: 'zeros' });
      const file = path.join(big, 'bert-base.onnx');
      saveModel(model, file);
      const artifacts = path.join(big, 'run', 'artifacts');
      const gen = generateArtifacts({ model: file, train: 'layernorm', task: 'sst2', out: artifacts, dropout: 0 });
      // The run: perturbed values in best/ (what training would leave).
      const rng = new Rng(1);
      const initial = readSafetensors(path.join(artifacts, 'params.safetensors')).tensors;
      const tuned = new Map([...initial].map(([k, t]) => [k, { shape: t.shape, data: Float32Array.from(t.data, (v) => v + rng.normal(0, 0.01)) }]));
      fs.mkdirSync(path.join(big, 'run', 'best'), { recursive: true });
      writeSafetensors(path.join(big, 'run', 'best', 'params.safetensors'), tuned);
      fs.writeFileSync(path.join(big, 'run', 'config.json'), JSON.stringify({ artifacts }));
      const r = exportDelta({ run: path.join(big, 'run'), out: path.join(big, 'delta') });

      const layerNormValues = (1 + 12 * 2) * 2 * 768;
      const headValues = 2 * 768 + 2;
      expect(gen.manifest.selection.trainableCount).toBe(layerNormValues + headValues);
      const ln = r.manifest.parameters.filter((p) => p.module.endsWith('layernorm'));
      expect(ln).toHaveLength(50);
      const bytes = fs.statSync(path.join(big, 'delta', 'delta.safetensors')).size;
      const buf = fs.readFileSync(path.join(big, 'delta', 'delta.safetensors'));
      const header = 8 + Number(buf.readBigUInt64LE(0));
      expect(bytes).toBe(header + 4 * (layerNormValues + headValues));
      expect(bytes - 4 * headValues).toBeLessThan(200 * 1000);
      expect(r.bytes).toBe(bytes);
    } finally {
      fs.rmSync(big, { recursive: true, force: true });
    }
  });
});
