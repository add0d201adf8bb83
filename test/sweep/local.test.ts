import { beforeAll, describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readSafetensors } from '../../src/bert/safetensors.js';
import { sweep, type SweepOptions } from '../../src/sweep/index.js';
import { readResults, type CellResult } from '../../src/sweep/results.js';
import type { ModuleMagnitude } from '../../src/sweep/magnitude.js';
import { readSummary, train } from '../../src/train/index.js';
import { GLUE, tmpDir } from '../helpers/paths.js';
import { readJsonl, runCli, spawnCli, waitFor, writeTinyModel } from './helpers.js';

/** A grid small enough for CI: a tiny random BERT, few examples, one epoch, no dropout. */
const settings = { epochs: 1, limitTrain: 32, limitEval: 16, batchSize: 8, dropout: 0, seeds: [42], lr: [1e-2] as number[] };

describe('modtune sweep: a local grid', () => {
  let model: string;
  let out: string;
  let base: SweepOptions;
  const lines: string[] = [];
  let results: Map<string, CellResult>;

  beforeAll(async () => {
    model = writeTinyModel(path.join(tmpDir(), 'model'));
    out = path.join(tmpDir(), 'sweep');
    base = {
      ...settings, model, data: GLUE, cacheDir: false, out,
      tasks: ['rte', 'mrpc'], train: ['layernorm', 'bias', 'layernorm@0', 'layernorm@1', 'layernorm:top=20%', 'layernorm:random=20%'],
    };
    const r = await sweep({ ...base, workers: 2, log: (l) => lines.push(l) });
    expect(r).toMatchObject({ total: 12, done: 12, failed: 0, pending: 0, interrupted: false });
    results = readResults(out);
  });

  it('runs every cell as an ordinary train run folder, with the same result as `train` itself', async () => {
    expect([...results.keys()].sort()).toEqual([
      'MRPC-bias-s42-lr1e-2', 'MRPC-layernorm-s42-lr1e-2', 'MRPC-layernorm@0-s42-lr1e-2', 'MRPC-layernorm@1-s42-lr1e-2', 'MRPC-layernorm_random=20-s42-lr1e-2', 'MRPC-layernorm_top=20-s42-lr1e-2',
      'RTE-bias-s42-lr1e-2', 'RTE-layernorm-s42-lr1e-2', 'RTE-layernorm@0-s42-lr1e-2', 'RTE-layernorm@1-s42-lr1e-2', 'RTE-layernorm_random=20-s42-lr1e-2', 'RTE-layernorm_top=20-s42-lr1e-2',
    ]);
    for (const r of results.values()) {
      const run = path.join(out, r.run);
      expect(r.run).toBe(`runs/${r.id}`);
      for (const f of ['config.json', 'metrics.jsonl', 'summary.json', 'best/params.safetensors', 'delta/delta.json', 'delta/delta.safetensors', 'curves.svg']) {
        expect(fs.existsSync(path.join(run, f)), `${r.id}: ${f}`).toBe(true);
      }
      const summary = readSummary(run)!;
      expect(r).toMatchObject({ status: 'done', worker: 'local', trainableCount: summary.trainableCount, totalCount: summary.totalCount, metrics: summary.bestMetrics, steps: 4 });
      expect(r.mainMetric).toBe(r.task === 'MRPC' ? r.metrics!.f1 : r.metrics!.accuracy);
      expect(r.cpuSeconds).toBeGreaterThan(0);
    }
    // One cell again by hand: the same metrics and the same tuned parameters, bit for bit.
    const cell = results.get('MRPC-bias-s42-lr1e-2')!;
    const alone = path.join(tmpDir(), 'alone');
    const s = await train({ model, train: 'bias', task: 'mrpc', seed: 42, lr: 1e-2, epochs: 1, limitTrain: 32, limitEval: 16, batchSize: 8, dropout: 0, data: GLUE, threads: 1, cacheDir: false, out: alone });
    expect(cell.metrics).toEqual(s.bestMetrics);
    expect(fs.readFileSync(path.join(out, cell.run, 'best/params.safetensors')).equals(fs.readFileSync(path.join(alone, 'best/params.safetensors')))).toBe(true);
    // Partial selections train what they say: top= and random= train the same number of entries.
    expect(results.get('RTE-layernorm_top=20-s42-lr1e-2')!.trainableCount).toBe(results.get('RTE-layernorm_random=20-s42-lr1e-2')!.trainableCount);
  });

  it('prints progress over the grid: done/total, ETA and the best so far', () => {
    const progress = lines.filter((l) => l.startsWith('sweep: '));
    expect(progress).toHaveLength(12);
    expect(progress.at(-1)).toMatch(/^sweep: 12\/12 cells, ETA 0s · .* · best so far: (RTE|MRPC) \S+ 0\.\d{4}, (RTE|MRPC) \S+ 0\.\d{4}$/);
    expect(progress[0]).toMatch(/^sweep: 1\/12 cells, ETA \d/);
  });

  it('writes results.jsonl and results.csv with one line per cell', () => {
    const jsonl = readJsonl<CellResult>(path.join(out, 'results.jsonl'));
    expect(jsonl).toHaveLength(12);
    expect(Object.keys(jsonl[0]!)).toEqual(expect.arrayContaining(['task', 'selection', 'seed', 'lr', 'trainableCount', 'totalCount', 'metrics', 'mainMetric', 'status', 'run', 'wallSeconds']));
    const csv = fs.readFileSync(path.join(out, 'results.csv'), 'utf8').trim().split('\n');
    expect(csv).toHaveLength(13);
    expect(csv[0]).toBe('id,task,selection,seed,lr,trainableCount,totalCount,mainMetric,status,run,steps,bestStep,wallSeconds,cpuSeconds,worker,finishedAt,error,metric:accuracy,metric:f1');
    const row = csv.find((l) => l.startsWith('RTE-layernorm-s42'))!.split(',');
    const r = results.get('RTE-layernorm-s42-lr1e-2')!;
    expect(row.slice(0, 9)).toEqual([r.id, 'RTE', 'layernorm', '42', '1e-2', String(r.trainableCount), String(r.totalCount), String(r.mainMetric), 'done']);
  });

  it('writes the report: the module table, layer-wise LayerNorms, top vs random, weight magnitudes, SVG plots from Vega-Lite specs', () => {
    const md = fs.readFileSync(path.join(out, 'report.md'), 'utf8');
    const score = (id: string) => results.get(id)!.mainMetric!.toFixed(4);
    const ln = results.get('RTE-layernorm-s42-lr1e-2')!;
    const avg = ((ln.mainMetric! + results.get('MRPC-layernorm-s42-lr1e-2')!.mainMetric!) / 2).toFixed(4);
    expect(md).toContain('| selection | trainable | share | RTE (accuracy) | MRPC (f1) | average |');
    expect(md).toContain(`| \`layernorm\` | ${ln.trainableCount} | ${(100 * ln.trainableCount / ln.totalCount).toFixed(3)}% | ${score('RTE-layernorm-s42-lr1e-2')} | ${score('MRPC-layernorm-s42-lr1e-2')} | ${avg} |`);
    expect(md).toContain('## LayerNorms of one layer');
    expect(md).toMatch(/\| `layernorm@1` \| \d+ \| [\d.]+% \| 0\.\d{4} \| 0\.\d{4} \| 0\.\d{4} \|/);
    expect(md).toContain(`| layernorm 20% | ${score('RTE-layernorm_top=20-s42-lr1e-2')} | ${score('RTE-layernorm_random=20-s42-lr1e-2')} | ${score('MRPC-layernorm_top=20-s42-lr1e-2')} | ${score('MRPC-layernorm_random=20-s42-lr1e-2')} |`);

    // Magnitudes from the base model: the builder initialises LayerNorm weights to 1 and matrices
    // from N(0, 0.02²), whose mean |w| is 0.02·√(2/π) ≈ 0.0160.
    const mags = JSON.parse(fs.readFileSync(path.join(out, 'magnitude.json'), 'utf8')) as ModuleMagnitude[];
    const of = (module: string, role: string) => mags.find((m) => m.module === module && m.role === role)!;
    expect(of('attention-layernorm', 'weight')).toMatchObject({ meanAbs: 1, entries: 64, perLayer: [1, 1] });
    expect(of('query', 'weight').meanAbs).toBeGreaterThan(0.0160 * 0.9);
    expect(of('query', 'weight').meanAbs).toBeLessThan(0.0160 * 1.1);
    expect(md).toContain('| attention-layernorm | weight | 64 | 1.000 |');
    expect(md).toMatch(/\| query \| 0\.01\d\d \| 0\.01\d\d \|/);

    for (const name of ['score-vs-share', 'layerwise-layernorm', 'top-vs-random', 'magnitude', 'magnitude-layers']) {
      const svg = fs.readFileSync(path.join(out, 'plots', `${name}.svg`), 'utf8');
      expect(svg.startsWith('<svg'), name).toBe(true);
      expect(svg).toMatch(/<path|<rect/);
      const spec = JSON.parse(fs.readFileSync(path.join(out, 'plots', `${name}.vl.json`), 'utf8'));
      expect(spec.$schema).toMatch(/vega-lite/);
      expect(md).toContain(`![`);
      expect(md).toContain(`(plots/${name}.svg)`);
    }
    // The plot's data are the report's numbers: one point per (selection, task).
    const points = JSON.parse(fs.readFileSync(path.join(out, 'plots/score-vs-share.vl.json'), 'utf8')).data.values as Array<{ selection: string; task: string; score: number }>;
    expect(points).toHaveLength(12);
    expect(points.find((p) => p.selection === 'bias' && p.task === 'RTE')!.score).toBe(results.get('RTE-bias-s42-lr1e-2')!.mainMetric);
    // A layer-wise plot has one point per layer and task.
    expect(JSON.parse(fs.readFileSync(path.join(out, 'plots/layerwise-layernorm.vl.json'), 'utf8')).data.values).toHaveLength(4);

    const html = fs.readFileSync(path.join(out, 'report.html'), 'utf8');
    expect(html).toContain('<img src="plots/score-vs-share.svg"');
    expect(html).toContain('<td><code>layernorm</code></td>');
    expect(html).toContain('<a href="runs/RTE-bias-s42-lr1e-2/curves.svg">curves</a>');
  });

  it('re-running the same sweep runs nothing again', async () => {
    const before = fs.statSync(path.join(out, 'runs/RTE-bias-s42-lr1e-2/summary.json')).mtimeMs;
    const again: string[] = [];
    const r = await sweep({ ...base, log: (l) => again.push(l) });
    expect(r).toMatchObject({ done: 12, failed: 0 });
    expect(again[0]).toMatch(/12 cells, 12 done, 0 to run$/);
    expect(readJsonl(path.join(out, 'results.jsonl'))).toHaveLength(12);
    expect(fs.statSync(path.join(out, 'runs/RTE-bias-s42-lr1e-2/summary.json')).mtimeMs).toBe(before);
  });

  it('`modtune plot RUN_DIR` draws one run\'s loss and metric curves', async () => {
    const run = path.join(out, 'runs/MRPC-layernorm-s42-lr1e-2');
    const dest = tmpDir();
    const r = await runCli(['plot', run, '--out', dest]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`wrote ${path.join(dest, 'curves.svg')} (5 records)`);
    const spec = JSON.parse(fs.readFileSync(path.join(dest, 'curves.vl.json'), 'utf8'));
    expect(spec.vconcat[0].layer[0].data.values.map((v: { step: number }) => v.step)).toEqual([1, 2, 3, 4]);
    expect(spec.vconcat[1].data.values).toEqual([{ step: 4, metric: 'f1', value: results.get('MRPC-layernorm-s42-lr1e-2')!.metrics!.f1 }, { step: 4, metric: 'accuracy', value: results.get('MRPC-layernorm-s42-lr1e-2')!.metrics!.accuracy }]);
    expect(fs.readFileSync(path.join(dest, 'curves.svg'), 'utf8')).toMatch(/^<svg[\s\S]*<path/);
    const bad = await runCli(['plot', tmpDir()]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/^modtune: .*: no metrics\.jsonl; expected a run folder of 'modtune train'/);
  });
});

describe('modtune sweep: failures and interruptions', () => {
  let model: string;
  beforeAll(() => {
    model = writeTinyModel(path.join(tmpDir(), 'model'));
  });

  it('records a failed cell with its error and goes on; the next run retries it and leaves finished cells alone', async () => {
    // RTE's training file with a broken header: its cells fail when they read it; MRPC's run.
    const data = tmpDir();
    fs.mkdirSync(path.join(data, 'RTE'));
    for (const f of ['dev.tsv', 'test.tsv']) fs.copyFileSync(path.join(GLUE, 'RTE', f), path.join(data, 'RTE', f));
    const good = fs.readFileSync(path.join(GLUE, 'RTE/train.tsv'), 'utf8');
    fs.writeFileSync(path.join(data, 'RTE/train.tsv'), good.replace(/^index\tsentence1/, 'idx\tfirst'));
    fs.symlinkSync(path.join(GLUE, 'MRPC'), path.join(data, 'MRPC'));
    const out = path.join(tmpDir(), 'sweep');
    const o: SweepOptions = { ...settings, model, data, cacheDir: false, out, tasks: ['rte', 'mrpc'], train: ['bias'] };

    const first = await sweep(o);
    expect(first).toMatchObject({ total: 2, done: 1, failed: 1 });
    const failed = readResults(out).get('RTE-bias-s42-lr1e-2')!;
    expect(failed).toMatchObject({ status: 'failed', metrics: null, mainMetric: null, trainableCount: expect.any(Number) });
    expect(failed.error).toMatch(/RTE[\\/]train\.tsv/);
    expect(fs.readFileSync(path.join(out, 'report.md'), 'utf8')).toContain(`| RTE-bias-s42-lr1e-2 | ${failed.error!.replace(/\|/g, '\\|')} |`);
    const mrpcSummary = path.join(out, 'runs/MRPC-bias-s42-lr1e-2/summary.json');
    const mtime = fs.statSync(mrpcSummary).mtimeMs;

    fs.writeFileSync(path.join(data, 'RTE/train.tsv'), good);
    const lines: string[] = [];
    const second = await sweep({ ...o, log: (l) => lines.push(l) });
    expect(second).toMatchObject({ total: 2, done: 2, failed: 0 });
    expect(lines[0]).toMatch(/2 cells, 1 done, 1 failed before \(run again\), 1 to run$/);
    expect(readResults(out).get('RTE-bias-s42-lr1e-2')!.status).toBe('done');
    expect(readJsonl(path.join(out, 'results.jsonl'))).toHaveLength(3);
    expect(fs.statSync(mrpcSummary).mtimeMs).toBe(mtime);
  });

  it('a sweep killed with SIGKILL continues where it stopped: finished cells stay, the cut cell resumes, results as without the kill', async () => {
    const root = tmpDir();
    // Six epochs: after the MRPC cell's first checkpoint (step 12) most of it is still to run, so the
    // kill lands inside the cell even on a fast machine (with two, the cell could end first).
    const args = (out: string) => ['sweep', '--model', model, '--tasks', 'rte,mrpc', '--train', 'layernorm', '--lr', '1e-2', '--epochs', '6', '--limit-train', '96',
      '--limit-eval', '16', '--batch-size', '8', '--dropout', '0', '--data', GLUE, '--workers', '1', '--out', out];
    const killed = path.join(root, 'killed');
    const victim = spawnCli(args(killed));
    const results = path.join(killed, 'results.jsonl');
    // Killed once the first cell is recorded and the second has written a checkpoint.
    await waitFor(() => fs.existsSync(results) && fs.existsSync(path.join(killed, 'runs/MRPC-layernorm-s42-lr1e-2/checkpoints/LATEST')), 120_000);
    victim.child.kill('SIGKILL');
    expect((await victim.done).signal).toBe('SIGKILL');
    const firstLine = fs.readFileSync(results, 'utf8');
    expect(readJsonl<CellResult>(results).map((r) => r.id)).toEqual(['RTE-layernorm-s42-lr1e-2']);
    const rteMtime = fs.statSync(path.join(killed, 'runs/RTE-layernorm-s42-lr1e-2/summary.json')).mtimeMs;

    const whole = path.join(root, 'whole');
    const [resumed, reference] = await Promise.all([runCli(args(killed)), runCli(args(whole))]);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(reference.code, reference.stderr).toBe(0);
    expect(resumed.stderr).toContain('2 cells, 1 done, 1 to run');
    expect(resumed.stdout).toContain(`${killed}: 2 cells, 2 done, 0 failed, 0 not finished`);
    expect(fs.readFileSync(results, 'utf8').startsWith(firstLine)).toBe(true);
    expect(fs.statSync(path.join(killed, 'runs/RTE-layernorm-s42-lr1e-2/summary.json')).mtimeMs).toBe(rteMtime);
    expect(fs.readFileSync(path.join(killed, 'logs/MRPC-layernorm-s42-lr1e-2.log'), 'utf8')).toMatch(/resuming .* from step \d+ of 72/);
    for (const id of ['RTE-layernorm-s42-lr1e-2', 'MRPC-layernorm-s42-lr1e-2']) {
      const a = readResults(killed).get(id)!;
      const b = readResults(whole).get(id)!;
      expect(a.metrics).toEqual(b.metrics);
      const delta = (dir: string) => readSafetensors(path.join(dir, 'runs', id, 'delta/delta.safetensors')).tensors;
      for (const [name, t] of delta(whole)) expect(Buffer.from(delta(killed).get(name)!.data.buffer).equals(Buffer.from(t.data.buffer)), `${id} ${name}`).toBe(true);
    }
  }, 300_000);

  it('without --model sweeps the embedded default and names it in the report (not its cache path)', async () => {
    const out = path.join(tmpDir(), 'default');
    const lines: string[] = [];
    const r = await sweep({ ...settings, data: GLUE, cacheDir: false, out, tasks: ['rte'], train: ['classifier'], limitTrain: 16, limitEval: 8, log: (l) => lines.push(l) });
    expect(r).toMatchObject({ total: 1, done: 1 });
    expect(lines[0]).toBe('no model given: sweeping the embedded default bert-mini-wikibooks');
    const md = fs.readFileSync(path.join(out, 'report.md'), 'utf8');
    expect(md).toMatch(/^- base model: `bert-mini-wikibooks`, modtune's embedded default \(sha256 [0-9a-f]{16}…, 4 layers\)$/m);
    expect(md).not.toContain('.cache');
    // --resume keeps the name.
    expect(await sweep({ out, resume: true, data: GLUE, cacheDir: false })).toMatchObject({ done: 1 });
    expect(fs.readFileSync(path.join(out, 'report.md'), 'utf8')).toContain("`bert-mini-wikibooks`, modtune's embedded default");
  }, 120_000);
});
