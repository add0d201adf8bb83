/**
 * What `train` may replace and who may write a run folder: --force replaces only a run folder
 * (never one holding the command's inputs, never an arbitrary folder), one writer per run folder
 * (a lock holding the PID, taken over when its process is gone), and a run stopped before its
 * config.json starts again without --force.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ModtuneError } from '../../src/errors.js';
import { readSummary, train, type TrainOptions } from '../../src/train/index.js';
import { latestCheckpointStep, pruneCheckpoints } from '../../src/train/checkpoint.js';
import { reconcileBest } from '../../src/train/run-folder.js';
import { acquireFolderLock, LOCK_FILE, sweepDeadTemps } from '../../src/util/folder-lock.js';
import { GLUE, ROOT, tmpDir } from '../helpers/paths.js';
import { runCli, snapshot, spawnCli, tinyArtifacts, trainFails as fails, waitFor, writeTinyModel } from './helpers.js';

const quiet = { cacheDir: false as const, data: GLUE, threads: 1 };
const short = { limitTrain: 8, limitEval: 8, batchSize: 8, maxSteps: 1 };


/** The PID of a process that has exited. */
function deadPid(): number {
  return spawnSync(process.execPath, ['-e', '']).pid!;
}

function writeLock(dir: string, pid: number): void {
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, LOCK_FILE), JSON.stringify({ pid, host: os.hostname(), command: 'modtune train', since: new Date().toISOString() }));
}

describe('train --force replaces only a run folder', () => {
  let artifacts: string;
  beforeAll(() => {
    artifacts = tinyArtifacts({ task: 'sst2', train: 'layernorm' });
  });

  it('refuses an --out that is or holds the model, even with --force, and deletes nothing', async () => {
    const dir = tmpDir();
    const model = writeTinyModel(path.join(dir, 'models'));
    const before = snapshot(dir);
    for (const out of [path.dirname(model), dir]) {
      const msg = await fails({ ...quiet, ...short, model, train: 'layernorm', task: 'sst2', out, force: true });
      expect(msg).toBe(`--out ${out} holds the model ${model}, an input of this command; choose another --out`);
    }
    expect(snapshot(dir)).toEqual(before);
  });

  it('`train model.onnx --out . --force` in the model\'s folder is refused in one line, the folder intact, no --force suggested', async () => {
    const dir = tmpDir();
    writeTinyModel(dir);
    const before = snapshot(dir);
    const r = await runCli(['train', 'model.onnx', '--train', 'layernorm', '--task', 'sst2', '--data', GLUE, '--out', '.', '--force'], {}, dir);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`modtune: --out ${fs.realpathSync(dir)} holds the model ${fs.realpathSync(dir)}/model.onnx, an input of this command; choose another --out\n`);
    expect(snapshot(dir)).toEqual(before);
  });

  it('refuses an --out that holds the artifacts or the data', async () => {
    expect(await fails({ ...quiet, ...short, artifacts, task: 'sst2', out: path.dirname(artifacts), force: true }))
      .toMatch(/^--out .* holds the artifacts .*, an input of this command; choose another --out$/);
    expect(await fails({ ...quiet, ...short, artifacts, task: 'sst2', out: GLUE, force: true }))
      .toBe(`--out ${GLUE} is the data, an input of this command; choose another --out`);
  });

  it('never replaces a non-empty folder that is not a run, and does not suggest --force for it', async () => {
    const out = tmpDir();
    fs.writeFileSync(path.join(out, 'notes.txt'), 'mine');
    fs.writeFileSync(path.join(out, 'config.json'), '{"model_type": "bert"}'); // someone's own config.json
    for (const force of [false, true]) {
      const msg = await fails({ ...quiet, ...short, artifacts, task: 'sst2', out, force });
      expect(msg).toBe(`--out ${out} is not empty and is not a run folder (no config.json written by modtune); choose another --out (--force replaces only a run folder)`);
    }
    expect(fs.readdirSync(out).sort()).toEqual(['config.json', 'notes.txt']);
  });

  it('replaces a run folder with --force', async () => {
    const out = path.join(tmpDir(), 'run');
    await train({ ...quiet, ...short, artifacts, task: 'sst2', out });
    fs.writeFileSync(path.join(out, 'leftover'), 'x');
    await train({ ...quiet, ...short, artifacts, task: 'sst2', out, force: true, seed: 7 });
    expect(fs.existsSync(path.join(out, 'leftover'))).toBe(false);
    expect(readSummary(out)!.steps).toBe(1);
    expect(fs.existsSync(path.join(out, LOCK_FILE))).toBe(false); // released at the end
  });
});

describe('a run stopped before its config.json', () => {
  let model: string;
  beforeAll(() => {
    model = writeTinyModel(tmpDir());
  });

  /** What a run killed while building its artifacts leaves: its lock and a temporary artifacts folder. */
  function killedEarly(): string {
    const out = path.join(tmpDir(), 'run');
    const pid = deadPid();
    writeLock(out, pid);
    fs.mkdirSync(path.join(out, `artifacts.tmp-${pid}`));
    fs.writeFileSync(path.join(out, `artifacts.tmp-${pid}`, 'params.safetensors'), 'partial');
    return out;
  }

  it('starts again without --force', async () => {
    const out = killedEarly();
    const s = await train({ ...quiet, ...short, model, train: 'layernorm', task: 'sst2', dropout: 0, out });
    expect(s.steps).toBe(1);
    expect(fs.readdirSync(out).filter((n) => n.includes('.tmp-'))).toEqual([]);
  });

  it('--resume with the run\'s options starts it; --resume alone says what to do', async () => {
    const out = killedEarly();
    expect(await fails({ ...quiet, out, resume: true }))
      .toBe(`--resume: ${out} holds a run stopped before it wrote config.json; start it again with its options (a model or --artifacts, --train, --task), no --force needed`);
    const lines: string[] = [];
    const s = await train({ ...quiet, ...short, model, train: 'layernorm', task: 'sst2', dropout: 0, out, resume: true, log: (l) => lines.push(l) });
    expect(s.steps).toBe(1);
    expect(lines).toContain(`${out}: the run was stopped before it wrote config.json; starting it from the beginning`);
  });
});

describe('one writer per run folder', () => {
  let sleeper: ReturnType<typeof spawn>;
  beforeAll(() => {
    sleeper = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 600000)'], { stdio: 'ignore' });
  });
  afterAll(() => {
    sleeper.kill('SIGKILL');
  });

  it('a lock held by a live process refuses; one of a dead process is taken over; release removes it', () => {
    const dir = tmpDir();
    writeLock(dir, sleeper.pid!);
    expect(() => acquireFolderLock(dir, 'test')).toThrow(new RegExp(`^${dir} is in use by modtune train \\(PID ${sleeper.pid}, since .*\\); one writer per folder`));
    writeLock(dir, deadPid());
    const lock = acquireFolderLock(dir, 'test');
    expect(JSON.parse(fs.readFileSync(lock.file, 'utf8')).pid).toBe(process.pid);
    expect(() => acquireFolderLock(dir, 'again')).toThrow(/already locked by this process/);
    lock.release();
    expect(fs.readdirSync(dir)).toEqual([]);
  });

  it('of processes racing for a stale lock, exactly one wins', async () => {
    const dir = tmpDir();
    writeLock(dir, deadPid());
    const go = path.join(dir, 'go');
    // Each child waits for the start signal, tries once, holds what it won for a moment, and says.
    const code = `
      import * as fs from 'node:fs';
      const { acquireFolderLock } = await import(${JSON.stringify(path.join(ROOT, 'src/util/folder-lock.ts'))});
      fs.writeFileSync(${JSON.stringify(path.join(dir, 'ready-'))} + process.pid, '');
      while (!fs.existsSync(${JSON.stringify(go)})) await new Promise((r) => setTimeout(r, 2));
      try { const l = acquireFolderLock(${JSON.stringify(dir)}, 'racer'); await new Promise((r) => setTimeout(r, 1500)); l.release(); console.log('won'); }
      catch (e) { console.log(/is in use by/.test(e.message) ? 'refused' : 'error ' + e.message); }`;
    const racers = Array.from({ length: 5 }, () => spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] }));
    const said = racers.map((c) => new Promise<string>((resolve) => {
      let out = '';
      c.stdout!.on('data', (d) => (out += d));
      c.on('close', () => resolve(out.trim()));
    }));
    await waitFor(() => fs.readdirSync(dir).filter((n) => n.startsWith('ready-')).length === racers.length, 50_000);
    fs.writeFileSync(go, '');
    const results = await Promise.all(said);
    expect(results.filter((r) => r === 'won')).toHaveLength(1);
    expect(results.filter((r) => r === 'refused')).toHaveLength(4);
    expect(fs.readdirSync(dir).filter((n) => !n.startsWith('ready-'))).toEqual(['go']);
  }, 60_000);

  it('temporaries are swept only when their writer is gone', () => {
    const dir = tmpDir();
    const dead = deadPid();
    const names = [`.tmp-step-4-${sleeper.pid}`, `.tmp-step-4-${dead}`, `state.json.tmp-${sleeper.pid}-1700000000000`, `state.json.tmp-${dead}-1700000000000`];
    for (const n of names) fs.writeFileSync(path.join(dir, n), '');
    sweepDeadTemps(dir, (n) => n.includes('.tmp-'));
    expect(fs.readdirSync(dir).sort()).toEqual([`.tmp-step-4-${sleeper.pid}`, `state.json.tmp-${sleeper.pid}-1700000000000`].sort());
    // The checkpoint pruner follows the same rule.
    const run = tmpDir();
    fs.mkdirSync(path.join(run, 'checkpoints', `.tmp-step-9-${sleeper.pid}`), { recursive: true });
    fs.mkdirSync(path.join(run, 'checkpoints', `.tmp-step-9-${dead}`));
    pruneCheckpoints(run, 2);
    expect(fs.readdirSync(path.join(run, 'checkpoints'))).toEqual([`.tmp-step-9-${sleeper.pid}`]);
    // And so does a resume in the run folder itself.
    for (const n of [`best.tmp-${dead}`, `best.old-${sleeper.pid}`, `metrics.jsonl.tmp-${dead}-1700000000000`, `summary.json.tmp-${sleeper.pid}-1700000000000`, `${LOCK_FILE}.stale-${dead}`]) {
      fs.mkdirSync(path.join(run, n));
    }
    reconcileBest(run, null);
    expect(fs.readdirSync(run).sort()).toEqual(['checkpoints', `best.old-${sleeper.pid}`, `summary.json.tmp-${sleeper.pid}-1700000000000`].sort());
  });

  it('a second train or --resume on a run being written is refused, with or without --force; after a kill, --resume takes over', async () => {
    const model = writeTinyModel(tmpDir());
    const out = path.join(tmpDir(), 'run');
    const args = [model, '--train', 'layernorm', '--task', 'sst2', '--data', GLUE, '--threads', '1', '--dropout', '0', '--batch-size', '8', '--limit-train', '64', '--limit-eval', '8', '--save-every', '2', '--max-steps', '100000', '--out', out];
    const first = spawnCli(['train', ...args]);
    await waitFor(() => fs.existsSync(path.join(out, 'checkpoints/LATEST')), 120_000);
    const pid = first.child.pid!;
    const inUse = new RegExp(`^modtune: ${out} is in use by modtune train \\(PID ${pid}, since [^)]*\\); one writer per folder: wait for it to finish or stop it \\(remove ${path.join(out, LOCK_FILE)} only if that process is gone\\)$`);
    const [forced, resumed] = await Promise.all([runCli(['train', ...args, '--force']), runCli(['train', '--resume', '--out', out])]);
    for (const r of [forced, resumed]) {
      expect(r.code).toBe(1);
      expect(r.stderr.trim()).toMatch(inUse);
    }
    first.child.kill('SIGKILL');
    await first.done;
    const killedAt = latestCheckpointStep(out)!;
    // The lock of the killed run is stale: the resume takes it over and trains on.
    const again = spawnCli(['train', '--resume', '--out', out]);
    let said = '';
    again.child.stderr!.on('data', (d) => (said += d));
    // Once it says so it has discarded anything after killedAt; then wait for a checkpoint of its own.
    await waitFor(() => said.includes('resuming'), 120_000);
    await waitFor(() => (latestCheckpointStep(out) ?? 0) > killedAt, 120_000);
    again.child.kill('SIGINT');
    const r = await again.done;
    expect(r.code, r.stderr).toBe(130);
    expect(r.stderr).toContain(`resuming ${out} from step ${killedAt}`);
    expect(fs.existsSync(path.join(out, LOCK_FILE))).toBe(false);
  }, 400_000);
});
