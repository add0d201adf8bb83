import { describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  discardAfter, latestCheckpointStep, listCheckpoints, readLatestCheckpoint, writeCheckpoint,
  type CheckpointStage, type CheckpointState,
} from '../../src/train/checkpoint.js';
import { tmpDir } from '../helpers/paths.js';

function state(step: number): CheckpointState {
  return {
    version: 1, step, epoch: step / 10, data: { epoch: 0, position: step, rng: [1, 2, 3, 4, 0, 0], size: 80, batchSize: 8 },
    rng: { data: [1, 2, 3, 4, 0, 0] }, best: null, metrics: null,
    progress: { lastEvalStep: 0, evalsSinceBest: 0, elapsedSec: step, trainSec: step, examples: 8 * step },
  };
}

const tensors = (v: number) => ({
  parameters: new Map([['a.weight', new Float32Array([v, v + 1, v + 2])], ['a.bias', new Float32Array([-v])]]),
  optimizer: new Map([['a.weight.exp_avg', new Float32Array(3).fill(v / 10)], ['a.weight.exp_avg_sq', new Float32Array(3).fill(v / 100)]]),
});

class Crash extends Error {}

describe('checkpoints', () => {
  it('round-trips parameters, optimizer state and state.json, and points LATEST at the newest', () => {
    const run = tmpDir();
    writeCheckpoint(run, { state: state(3), ...tensors(3) });
    const ck = readLatestCheckpoint(run)!;
    expect(ck.name).toBe('step-3');
    expect(ck.state).toEqual(state(3));
    expect([...ck.parameters.get('a.weight')!]).toEqual([3, 4, 5]);
    expect([...ck.optimizer.get('a.weight.exp_avg_sq')!]).toEqual([...new Float32Array(3).fill(0.03)]);
    expect(fs.readFileSync(path.join(run, 'checkpoints/LATEST'), 'utf8')).toBe('step-3\n');
  });

  it('a crash at any stage of writing leaves the previous checkpoint intact and the one read back', () => {
    const run = tmpDir();
    writeCheckpoint(run, { state: state(2), ...tensors(2) });
    const before = fs.readFileSync(path.join(run, 'checkpoints/step-2/params.safetensors'));
    const stages: CheckpointStage[] = ['params', 'optimizer', 'state', 'renamed'];
    for (const [i, stage] of stages.entries()) {
      const step = 4 + i;
      expect(() => writeCheckpoint(run, { state: state(step), ...tensors(step) }, {
        onStage: (s) => { if (s === stage) throw new Crash(stage); },
      })).toThrow(Crash);
      const ck = readLatestCheckpoint(run)!;
      expect(ck.state.step).toBe(2);
      expect([...ck.parameters.get('a.weight')!]).toEqual([2, 3, 4]);
      expect(fs.readFileSync(path.join(ck.dir, 'params.safetensors')).equals(before)).toBe(true);
    }
    // The interrupted writes left a temp folder and (after 'renamed') a complete but unannounced step-7.
    const names = fs.readdirSync(path.join(run, 'checkpoints'));
    expect(names.some((n) => n.startsWith('.tmp-'))).toBe(true);
    expect(names).toContain('step-7');
    // Resuming from step 2 sweeps both away; the next write works normally.
    discardAfter(run, 2);
    expect(fs.readdirSync(path.join(run, 'checkpoints')).sort()).toEqual(['LATEST', 'step-2']);
    writeCheckpoint(run, { state: state(4), ...tensors(4) });
    expect(readLatestCheckpoint(run)!.state.step).toBe(4);
  });

  it('without a readable LATEST, the newest complete checkpoint is used; half-written folders never are', () => {
    const run = tmpDir();
    writeCheckpoint(run, { state: state(1), ...tensors(1) });
    writeCheckpoint(run, { state: state(2), ...tensors(2) });
    fs.rmSync(path.join(run, 'checkpoints/LATEST'));
    // A folder without state.json was never renamed into place by the writer.
    fs.mkdirSync(path.join(run, 'checkpoints/step-9'));
    expect(latestCheckpointStep(run)).toBe(2);
    fs.writeFileSync(path.join(run, 'checkpoints/LATEST'), 'step-9\n');
    expect(latestCheckpointStep(run)).toBe(2);
  });

  it('keeps the newest two plus the protected (best) step', () => {
    const run = tmpDir();
    for (let s = 1; s <= 5; s++) writeCheckpoint(run, { state: state(s), ...tensors(s) }, { protect: [2] });
    expect(listCheckpoints(run)).toEqual([2, 4, 5]);
    writeCheckpoint(run, { state: state(6), ...tensors(6) }, { protect: [] });
    expect(listCheckpoints(run)).toEqual([5, 6]);
  });

  it('writing the same step again replaces only its state.json', () => {
    const run = tmpDir();
    writeCheckpoint(run, { state: state(3), ...tensors(3) });
    const next = { ...state(3), progress: { ...state(3).progress, lastEvalStep: 3 } };
    writeCheckpoint(run, { state: next, ...tensors(3) });
    expect(readLatestCheckpoint(run)!.state.progress.lastEvalStep).toBe(3);
    expect(listCheckpoints(run)).toEqual([3]);
  });
});
