import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { runWorker, sweep, type SweepOptions } from '../../src/sweep/index.js';
import { readResults } from '../../src/sweep/results.js';
import { GLUE, tmpDir } from '../helpers/paths.js';
import { freePort, runCli, writeTinyModel } from './helpers.js';

const small = { epochs: 1, limitTrain: 16, limitEval: 8, batchSize: 8, dropout: 0, seeds: [42], lr: [1e-2] as number[], data: GLUE, cacheDir: false as const };

describe('modtune sweep: bad input', () => {
  let model: string;
  /** A TCP server on loopback that accepts connections and never answers (a hung Redis). */
  let silent: net.Server;
  let silentPort: number;
  const held: net.Socket[] = [];
  beforeAll(async () => {
    model = writeTinyModel(path.join(tmpDir(), 'model'));
    silent = net.createServer((socket) => held.push(socket));
    silentPort = await new Promise<number>((resolve) => silent.listen(0, '127.0.0.1', () => resolve((silent.address() as net.AddressInfo).port)));
  });
  afterAll(async () => {
    for (const s of held) s.destroy();
    await new Promise((r) => silent.close(r));
  });

  it('an unknown selection or task is refused before anything is written, naming it', async () => {
    const out = path.join(tmpDir(), 'sweep');
    await expect(sweep({ ...small, model, tasks: ['rte'], train: ['layernorm', 'atention'], out })).rejects.toThrow(/^selection 'atention' in the grid: unknown module 'atention' \(did you mean 'attention'\?\); modules: /);
    await expect(sweep({ ...small, model, tasks: ['rte'], train: ['layernorm@7'], out })).rejects.toThrow(/^selection 'layernorm@7' in the grid: .*layer 7/);
    await expect(sweep({ ...small, model, tasks: ['rte', 'sst3'], train: ['bias'], out })).rejects.toThrow("unknown GLUE task 'sst3': expected one of CoLA, SST-2, MRPC, STS-B, QQP, MNLI, QNLI, RTE, WNLI");
    await expect(sweep({ ...small, model, tasks: ['stsb'], train: ['bias'], out })).rejects.toThrow(/^task STS-B in the grid: .* has 2 labels but a regression head has 1 output; use --new-head/);
    expect(fs.existsSync(out)).toBe(false);
    const r = await runCli(['sweep', '--model', model, '--tasks', 'rte', '--train', 'nothing', '--out', out, '--data', GLUE]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^modtune: selection 'nothing' in the grid: unknown module 'nothing'[^\n]*\n$/);
  });

  it('a sweep folder made for another grid is refused unless --force; --force keeps the cells that still apply', async () => {
    const out = path.join(tmpDir(), 'sweep');
    const o: SweepOptions = { ...small, model, tasks: ['mrpc'], train: ['bias'], out };
    expect(await sweep(o)).toMatchObject({ done: 1 });
    await expect(sweep({ ...o, epochs: 2 })).rejects.toThrow(`${out} holds a sweep of another grid (epochs 1 then, 2 now); continue it with \`modtune sweep --resume --out ${out}\`, choose another --out, or pass --force to replace its grid`);
    await expect(sweep({ ...o, train: ['bias', 'layernorm'] })).rejects.toThrow(/holds a sweep of another grid \(train \["bias"\] then, \["bias","layernorm"\] now\)/);

    // --resume takes the folder's own grid.
    const resumed: string[] = [];
    expect(await sweep({ out, resume: true, data: GLUE, log: (l) => resumed.push(l) })).toMatchObject({ total: 1, done: 1 });
    expect(resumed[0]).toMatch(/1 cells, 1 done, 0 to run$/);

    const mtime = fs.statSync(path.join(out, 'runs/MRPC-bias-s42-lr1e-2/summary.json')).mtimeMs;
    const grown: string[] = [];
    expect(await sweep({ ...o, train: ['bias', 'layernorm'], force: true, log: (l) => grown.push(l) })).toMatchObject({ total: 2, done: 2 });
    expect(grown[0]).toMatch(/finished cells that are still in it are kept/);
    expect(fs.statSync(path.join(out, 'runs/MRPC-bias-s42-lr1e-2/summary.json')).mtimeMs).toBe(mtime);

    const changed: string[] = [];
    expect(await sweep({ ...o, limitTrain: 24, force: true, log: (l) => changed.push(l) })).toMatchObject({ total: 1, done: 1 });
    expect(changed[0]).toMatch(/no longer apply and are removed/);
    expect(fs.existsSync(path.join(out, 'runs/MRPC-layernorm-s42-lr1e-2'))).toBe(false);
    expect([...readResults(out).keys()]).toEqual(['MRPC-bias-s42-lr1e-2']);
  }, 300_000);

  it('refuses a folder that is not a sweep, and --resume where there is none', async () => {
    const mine = tmpDir();
    fs.writeFileSync(path.join(mine, 'notes.txt'), 'mine');
    await expect(sweep({ ...small, model, tasks: ['mrpc'], train: ['bias'], out: mine, force: true })).rejects.toThrow(`${mine} exists, is not empty and holds no sweep (no sweep.json); choose another --out`);
    expect(fs.readdirSync(mine)).toEqual(['notes.txt']);
    await expect(sweep({ out: path.join(tmpDir(), 'none'), resume: true })).rejects.toThrow(/--resume: .* holds no sweep \(no sweep\.json\)/);
  });

  it('an unreachable Redis is a clear error within seconds, for the sweep and for a worker', async () => {
    const closed = `redis://127.0.0.1:${await freePort()}`;
    const o: SweepOptions = { ...small, model, tasks: ['mrpc'], train: ['bias'], out: path.join(tmpDir(), 's'), queue: closed };
    let t0 = Date.now();
    await expect(sweep(o)).rejects.toThrow(`cannot reach Redis at ${closed} (connect ECONNREFUSED ${closed.slice(8)}); is redis-server running there and reachable from this machine?`);
    expect(Date.now() - t0).toBeLessThan(5000);

    const hung = `redis://127.0.0.1:${silentPort}`;
    t0 = Date.now();
    await expect(runWorker({ queue: hung, workDir: tmpDir() })).rejects.toThrow(`cannot reach Redis at ${hung} (no answer within 3 s)`);
    expect(Date.now() - t0).toBeLessThan(6000);

    await expect(runWorker({ queue: 'http://127.0.0.1:6379' })).rejects.toThrow("--queue 'http://127.0.0.1:6379': expected a redis:// or rediss:// URL, got http://");
    const cli = await runCli(['worker', '--queue', closed]);
    expect(cli.code).toBe(1);
    expect(cli.stderr).toBe(`modtune: cannot reach Redis at ${closed} (connect ECONNREFUSED ${closed.slice(8)}); is redis-server running there and reachable from this machine?\n`);
  });
});
