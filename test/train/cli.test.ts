import { beforeAll, describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readGlueSplit } from '../../src/data/glue-reader.js';
import { readLatestCheckpoint, readMetrics, type TrainRecord } from '../../src/train/index.js';
import { GLUE, tmpDir } from '../helpers/paths.js';
import { runCli, snapshot, spawnCli, waitFor, writeTinyModel } from './helpers.js';

/** Metrics records without the timing fields, which differ between runs. */
const records = (dir: string) => readMetrics(dir).map((r) => {
  const { examplesPerSec: _a, elapsedSec: _b, ...rest } = r as TrainRecord;
  return rest;
});

describe('modtune train (CLI)', () => {
  let model: string;
  beforeAll(() => {
    model = writeTinyModel(tmpDir());
  });
  const common = () => [model, '--train', 'attention', '--task', 'sst2', '--data', GLUE, '--threads', '1', '--dropout', '0', '--lr', '1e-2', '--batch-size', '8'];

  it('resumes a run killed with SIGKILL and ends with the same bytes as an uninterrupted run', async () => {
    const root = tmpDir();
    const args = (out: string) => [...common(), '--limit-train', '128', '--limit-eval', '32', '--epochs', '3', '--save-every', '2', '--out', out];
    const killed = path.join(root, 'killed');
    const victim = spawnCli(['train', ...args(killed)]);
    await waitFor(() => fs.existsSync(path.join(killed, 'checkpoints/LATEST')));
    victim.child.kill('SIGKILL');
    const v = await victim.done;
    expect(v.signal).toBe('SIGKILL');
    expect(fs.existsSync(path.join(killed, 'summary.json'))).toBe(false);
    const killedAt = readLatestCheckpoint(killed)!.state.step;
    expect(killedAt).toBeLessThan(48);

    const whole = path.join(root, 'whole');
    const [resumed, reference] = await Promise.all([
      runCli(['train', '--resume', '--out', killed]),
      runCli(['train', ...args(whole)]),
    ]);
    expect(reference.code, reference.stderr).toBe(0);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.stderr).toContain(`resuming ${killed} from step ${killedAt} of 48`);
    for (const f of ['checkpoints/step-48/params.safetensors', 'checkpoints/step-48/optimizer.safetensors', 'best/params.safetensors', 'best/metrics.json']) {
      expect(fs.readFileSync(path.join(killed, f)).equals(fs.readFileSync(path.join(whole, f))), f).toBe(true);
    }
    expect(records(killed)).toEqual(records(whole));
    // The end-of-run report: a metrics table with the best and final evaluations.
    expect(resumed.stdout).toMatch(/accuracy\nbest \(step \d+\) +0\.\d{4}\nfinal \(step 48\) +0\.\d{4}\n/);
    expect(resumed.stdout).toContain(`run folder: ${killed}`);
  });

  it('on SIGINT finishes the step, writes a checkpoint, exits 130 saying how to resume; a resume with other options is refused', async () => {
    const out = path.join(tmpDir(), 'run');
    const run = spawnCli(['train', ...common(), '--limit-train', '64', '--limit-eval', '8', '--max-steps', '100000', '--out', out]);
    await waitFor(() => fs.existsSync(path.join(out, 'metrics.jsonl')) && fs.readFileSync(path.join(out, 'metrics.jsonl'), 'utf8').split('\n').length > 3);
    run.child.kill('SIGINT');
    const r = await run.done;
    expect(r.code, r.stderr).toBe(130);
    const ck = readLatestCheckpoint(out)!;
    const lastTrain = readMetrics(out).filter((x) => x.type === 'train').at(-1)!;
    expect(ck.state.step).toBe(lastTrain.step);
    expect(r.stderr).toContain(`modtune: interrupted at step ${ck.state.step} of 100000; checkpoint saved in ${ck.dir}. Continue with: modtune train --resume --out ${out}`);
    expect(fs.existsSync(path.join(out, 'summary.json'))).toBe(false);

    const before = snapshot(out);
    const m = await runCli(['train', '--resume', '--out', out, '--lr', '1e-3', '--batch-size', '4', '--task', 'SST-2']);
    expect(m.code).toBe(1);
    expect(m.stderr.trim().split('\n')).toHaveLength(1);
    expect(m.stderr).toContain(`modtune: cannot resume ${out}: it was started with a different configuration: --batch-size 4 (the run has 8); --lr 0.001 (the run has 0.01). Resume with the run's own options`);
    expect(snapshot(out)).toEqual(before);
  });

  it('eval writes metrics for dev and a GLUE submission for test', async () => {
    const out = path.join(tmpDir(), 'run');
    const t = await runCli(['train', ...common(), '--limit-train', '32', '--limit-eval', '16', '--epochs', '1', '--out', out]);
    expect(t.code, t.stderr).toBe(0);

    const dev = await runCli(['eval', out, '--limit-eval', '16', '--threads', '1', '--out', path.join(out, 'dev.json')]);
    expect(dev.code, dev.stderr).toBe(0);
    const best = JSON.parse(fs.readFileSync(path.join(out, 'best/metrics.json'), 'utf8'));
    expect(dev.stdout).toContain(`SST-2 dev · best (step ${best.step})`);
    expect(dev.stdout).toMatch(new RegExp(`dev \\(16\\) +${best.metrics.accuracy.toFixed(4)}`));
    expect(JSON.parse(fs.readFileSync(path.join(out, 'dev.json'), 'utf8')).metrics).toEqual(best.metrics);

    const file = path.join(tmpDir(), 'SST-2.tsv');
    const test = await runCli(['eval', out, '--split', 'test', '--checkpoint', 'last', '--threads', '1', '--out', file]);
    expect(test.code, test.stderr).toBe(0);
    const ids = readGlueSplit('sst2', 'test', GLUE).examples.map((e) => e.id);
    expect(test.stdout).toContain(`wrote ${file} (${ids.length} predictions, SST-2 test, last (step 4))`);
    const lines = fs.readFileSync(file, 'utf8').trimEnd().split('\n');
    expect(lines[0]).toBe('index\tprediction');
    expect(lines.slice(1).map((l) => l.split('\t')[0])).toEqual(ids);
    expect(lines.slice(1).every((l) => /^\S+\t[01]$/.test(l))).toBe(true);

    // Its own earlier outputs are replaced; any other file is refused before the evaluation, intact.
    const again = await runCli(['eval', out, '--split', 'test', '--checkpoint', 'last', '--threads', '1', '--out', file]);
    expect(again.code, again.stderr).toBe(0);
    const devAgain = await runCli(['eval', out, '--limit-eval', '16', '--threads', '1', '--out', path.join(out, 'dev.json')]);
    expect(devAgain.code, devAgain.stderr).toBe(0);
    const notes = path.join(tmpDir(), 'notes.tsv');
    fs.writeFileSync(notes, 'my own notes\n');
    const config = fs.readFileSync(path.join(out, 'config.json'), 'utf8');
    for (const [args, target, what] of [
      [['--out', notes], notes, 'a metrics file'],
      [['--out', path.join(out, 'config.json')], path.join(out, 'config.json'), 'a metrics file'],
      [['--split', 'test', '--out', notes], notes, 'a GLUE submission file'],
    ] as const) {
      const r = await runCli(['eval', out, '--limit-eval', '16', '--threads', '1', ...args]);
      expect(r.code).toBe(1);
      expect(r.stderr).toBe(`modtune: --out ${target} exists and is not ${what} written by 'modtune eval'; eval replaces only its own output, choose another --out\n`);
    }
    expect(fs.readFileSync(notes, 'utf8')).toBe('my own notes\n');
    expect(fs.readFileSync(path.join(out, 'config.json'), 'utf8')).toBe(config);
  });

  it('bad input: one line, exit 1', async () => {
    const r = await runCli(['train', model, '--train', 'layernorm', '--task', 'nope', '--data', GLUE]);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`modtune: unknown GLUE task 'nope': expected one of CoLA, SST-2, MRPC, STS-B, QQP, MNLI, QNLI, RTE, WNLI\n`);
    const e = await runCli(['eval', tmpDir()]);
    expect(e.code).toBe(1);
    expect(e.stderr).toMatch(/^modtune: .*: neither a run folder \(config\.json\) nor an artifacts folder \(manifest\.json\)\n$/);
  });
});
