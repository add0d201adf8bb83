/** `eval` says when it scores other dev examples than the run evaluated on while training. */
import { beforeAll, describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { evaluateRun, train } from '../../src/train/index.js';
import { GLUE, tmpDir } from '../helpers/paths.js';
import { tinyArtifacts } from './helpers.js';

const quiet = { cacheDir: false as const, threads: 1 };

describe('eval of a run on another dev subset', () => {
  let run: string;
  beforeAll(async () => {
    run = path.join(tmpDir(), 'run');
    await train({ ...quiet, data: GLUE, artifacts: tinyArtifacts({ task: 'sst2', train: 'layernorm' }), task: 'sst2', limitTrain: 8, limitEval: 8, batchSize: 8, maxSteps: 1, out: run });
  });

  async function notes(o: { limitEval?: number; data?: string }): Promise<string[]> {
    const lines: string[] = [];
    await evaluateRun({ ...quiet, dir: run, data: o.data ?? GLUE, limitEval: o.limitEval, log: (l) => lines.push(l) });
    return lines;
  }

  it('says nothing for the same examples', async () => {
    expect(await notes({ limitEval: 8 })).toEqual([]);
  });

  it('says so for another number of examples', async () => {
    expect(await notes({ limitEval: 16 })).toEqual([
      "note: scoring 16 dev examples, but the run evaluated on 8 (--limit-eval 8); these metrics are not comparable with the run's",
    ]);
  });

  it('says so for as many but other examples', async () => {
    const other = tmpDir();
    fs.mkdirSync(path.join(other, 'SST-2'));
    const lines = fs.readFileSync(path.join(GLUE, 'SST-2', 'dev.tsv'), 'utf8').split('\n');
    lines[2] = `an entirely different review\t${lines[2]!.split('\t')[1]}`;
    fs.writeFileSync(path.join(other, 'SST-2', 'dev.tsv'), lines.join('\n'));
    expect(await notes({ limitEval: 8, data: other })).toEqual([
      `note: the dev examples scored (${other}, max length 128) differ from those the run evaluated on, though as many; these metrics are not comparable with the run's`,
    ]);
  });
});
