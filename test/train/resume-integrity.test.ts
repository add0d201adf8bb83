/**
 * What --resume continues from: the very data the run started with (a hash of the tokenized set,
 * not only its size), and a checkpoint cross-checked against the run; a damaged latest checkpoint
 * gives way to the newest intact one, with a message.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { writeSafetensors } from '../../src/bert/safetensors.js';
import { ModtuneError } from '../../src/errors.js';
import { listCheckpoints, readConfig, readSummary, train, TrainInterrupted, type TrainOptions } from '../../src/train/index.js';
import { GLUE, tmpDir } from '../helpers/paths.js';
import { paramsOf, tinyArtifacts, trainFails as fails } from './helpers.js';

const quiet = { cacheDir: false as const, data: GLUE, threads: 1 };


/** A GLUE folder whose SST-2 training set has as many examples, one of them reworded. */
function rewordedGlue(): string {
  const root = tmpDir();
  fs.mkdirSync(path.join(root, 'SST-2'));
  for (const f of ['dev.tsv', 'test.tsv']) fs.copyFileSync(path.join(GLUE, 'SST-2', f), path.join(root, 'SST-2', f));
  const lines = fs.readFileSync(path.join(GLUE, 'SST-2', 'train.tsv'), 'utf8').split('\n');
  lines[3] = `a completely different sentence , same label\t${lines[3]!.split('\t')[1]}`;
  fs.writeFileSync(path.join(root, 'SST-2', 'train.tsv'), lines.join('\n'));
  return root;
}

describe('--resume', () => {
  let artifacts: string;
  beforeAll(() => {
    artifacts = tinyArtifacts({ task: 'sst2', train: 'layernorm' });
  });
  const run = { task: 'sst2', limitTrain: 16, limitEval: 8, batchSize: 4, lr: 1e-2 };

  it('refuses training data that differs from the run\'s though it has as many examples', async () => {
    const out = path.join(tmpDir(), 'run');
    const stopped = new AbortController();
    stopped.abort();
    await expect(train({ ...quiet, ...run, artifacts, maxSteps: 8, out, signal: stopped.signal })).rejects.toBeInstanceOf(TrainInterrupted);
    const cfg = readConfig(out);
    expect(cfg.dataSha256!.train).toMatch(/^[0-9a-f]{64}$/);
    const other = rewordedGlue();
    const msg = await fails({ ...quiet, out, resume: true, data: other });
    expect(msg).toMatch(new RegExp(`^cannot resume ${out}: the tokenized SST-2 data in ${other} is not the run's, though as many examples \\(train sha256 ${cfg.dataSha256!.train.slice(0, 12)}… then, [0-9a-f]{12}… now\\); resume with the data the run started with \\(--data DIR\\)$`));
    expect((await train({ ...quiet, out, resume: true })).steps).toBe(8);
  });

  describe('with a damaged latest checkpoint', () => {
    let reference: string;
    beforeAll(async () => {
      reference = path.join(tmpDir(), 'run');
      await train({ ...quiet, ...run, artifacts, maxSteps: 4, saveEvery: 1, out: reference });
    });

    /** The reference run as if it had crashed after its last checkpoint, before its summary. */
    function crashedCopy(): string {
      const out = path.join(tmpDir(), 'run');
      fs.cpSync(reference, out, { recursive: true });
      fs.rmSync(path.join(out, 'summary.json'));
      expect(listCheckpoints(out).slice(-2)).toEqual([3, 4]);
      return out;
    }
    const step4 = (out: string, f: string) => path.join(out, 'checkpoints', 'step-4', f);

    const damages: Array<[string, (out: string) => void, RegExp]> = [
      ['a truncated params.safetensors', (out) => fs.truncateSync(step4(out, 'params.safetensors'), 20), /params\.safetensors/],
      ['a step beyond the run', (out) => {
        const state = JSON.parse(fs.readFileSync(step4(out, 'state.json'), 'utf8'));
        fs.writeFileSync(step4(out, 'state.json'), JSON.stringify({ ...state, step: 400 }));
      }, /step 400/],
      ['a tensor missing', (out) => {
        const params = paramsOf(step4(out, 'params.safetensors'));
        const [first] = params.keys();
        params.delete(first!);
        writeSafetensors(step4(out, 'params.safetensors'), new Map([...params].map(([k, v]) => [k, { shape: [v.length], data: v }])));
      }, /trainable parameter '.*' is missing/],
    ];
    for (const [what, damage, reason] of damages) {
      it(`resumes from the previous intact checkpoint after ${what}, saying so, and ends as the uninterrupted run`, async () => {
        const out = crashedCopy();
        damage(out);
        const lines: string[] = [];
        const s = await train({ ...quiet, out, resume: true, log: (l) => lines.push(l) });
        expect(s.steps).toBe(4);
        const note = lines.find((l) => l.startsWith('checkpoint step-4 is damaged'));
        expect(note).toMatch(/; resuming from step-3, the newest intact one \(the damaged ones after it are discarded\)$/);
        expect(note).toMatch(reason);
        expect(lines).toContain(`resuming ${out} from step 3 of 4`);
        for (const f of ['params.safetensors', 'optimizer.safetensors']) {
          expect(fs.readFileSync(step4(out, f)).equals(fs.readFileSync(step4(reference, f))), f).toBe(true);
        }
        expect(readSummary(out)!.bestMetrics).toEqual(readSummary(reference)!.bestMetrics);
      });
    }

    it('refuses when no checkpoint is intact, naming each fault', async () => {
      const out = crashedCopy();
      for (const step of listCheckpoints(out)) fs.truncateSync(path.join(out, 'checkpoints', `step-${step}`, 'optimizer.safetensors'), 3);
      const msg = await fails({ ...quiet, out, resume: true });
      expect(msg).toMatch(new RegExp(`^${out}: no intact checkpoint to resume from \\(.*step-4/optimizer\\.safetensors.*; .*step-3/optimizer\\.safetensors.*\\); start the run again with --force$`));
    });
  });
});
