import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { Queue } from 'bullmq';
import { readSafetensors } from '../../src/bert/safetensors.js';
import { runWorker, sweep, sweepStatus, type SweepOptions } from '../../src/sweep/index.js';
import { bullConnection, parseRedisUrl } from '../../src/sweep/queue/connection.js';
import { readSweepManifest } from '../../src/sweep/folder.js';
import { jobId, JOB_FORMAT, type CellJobData } from '../../src/sweep/queue/job.js';
import { readResults } from '../../src/sweep/results.js';
import { sha256File } from '../../src/onnx/hash.js';
import { GLUE, tmpDir } from '../helpers/paths.js';
import { spawnCli, waitFor, writeTinyModel } from './helpers.js';
import { dropQueue, startRedis, type TestRedis } from './redis.js';

let redis: TestRedis;
let model: string;
const queues: string[] = [];
const children: ChildProcess[] = [];
const queueName = () => {
  const n = `modtune-test-${process.pid}-${queues.length}-${Date.now()}`;
  queues.push(n);
  return n;
};

beforeAll(async () => {
  redis = await startRedis();
  model = writeTinyModel(path.join(tmpDir(), 'model'));
});

afterAll(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  if (redis) {
    for (const q of queues) await dropQueue(redis.url, q);
    await redis.stop();
  }
});

const jobIdOf = (out: string, cell: string) => jobId(readSweepManifest(out)!.settingsHash, cell);

/** A worker CLI process; its stderr is readable while it runs. */
function startWorker(name: string, q: string, extra: string[] = []) {
  const w = spawnCli(['worker', '--queue', redis.url, '--queue-name', q, '--data', GLUE, '--threads', '1', '--work-dir', tmpDir(), '--name', name,
    '--lock-duration', '3000', '--stalled-interval', '1000', ...extra]);
  children.push(w.child);
  let stderr = '';
  w.child.stderr!.on('data', (d) => (stderr += d));
  return { ...w, stderr: () => stderr };
}

const grid = { epochs: 2, limitTrain: 96, limitEval: 16, batchSize: 8, dropout: 0, seeds: [42], lr: [1e-2] as number[] };

describe('modtune sweep --queue: BullMQ workers through a real Redis', () => {
  it('two workers, one killed with SIGKILL mid-cell: its cell is taken again and every result equals a local run\'s', async () => {
    const q = queueName();
    const a = startWorker('worker-a', q);
    await waitFor(() => a.stderr().includes('worker worker-a (modtune'), 60_000);
    const out = path.join(tmpDir(), 'dist');
    const o: Omit<SweepOptions, 'out'> = { ...grid, model, tasks: ['rte', 'mrpc'], train: ['layernorm', 'bias'] };
    const collected = sweep({ ...o, queue: redis.url, queueName: q, out });
    // Killed while training its first cell (its training has started on the worker).
    await waitFor(() => /cell (\S+) \(job/.test(a.stderr()) && /training RTE/.test(a.stderr()), 120_000);
    const killedCell = /cell (\S+) \(job/.exec(a.stderr())![1]!;
    a.child.kill('SIGKILL');
    expect((await a.done).signal).toBe('SIGKILL');
    expect(a.stderr()).not.toContain(`cell ${killedCell}: done`);
    const bLog: string[] = [];
    const stopB = new AbortController();
    const b = runWorker({
      queue: redis.url, queueName: q, data: GLUE, threads: 1, workDir: tmpDir(), name: 'worker-b', cacheDir: false,
      lockDuration: 3000, stalledInterval: 1000, signal: stopB.signal, log: (l) => bLog.push(l),
    });

    const r = await collected;
    expect(r).toMatchObject({ total: 4, done: 4, failed: 0, pending: 0 });
    const dist = readResults(out);
    expect(dist.get(killedCell)!.worker).toBe('worker-b');
    expect(bLog).toContain(`cell ${killedCell} (job ${jobIdOf(out, killedCell)}, attempt 2)`);
    stopB.abort();
    expect((await b).failed).toBe(0);

    const local = path.join(tmpDir(), 'local');
    await sweep({ ...o, data: GLUE, cacheDir: false, threads: 1, out: local });
    const ref = readResults(local);
    expect([...dist.keys()].sort()).toEqual([...ref.keys()].sort());
    for (const [id, want] of ref) {
      const got = dist.get(id)!;
      expect(got.status).toBe('done');
      expect(got.metrics, id).toEqual(want.metrics);
      expect(got.trainableCount).toBe(want.trainableCount);
      const tensors = (dir: string) => readSafetensors(path.join(dir, 'runs', id, 'delta/delta.safetensors')).tensors;
      for (const [name, t] of tensors(local)) expect(Buffer.from(tensors(out).get(name)!.data.buffer).equals(Buffer.from(t.data.buffer)), `${id} ${name}`).toBe(true);
      for (const f of ['config.json', 'metrics.jsonl', 'summary.json', 'best/metrics.json', 'delta/delta.json', 'delta/vocab.txt', 'curves.svg']) {
        expect(fs.existsSync(path.join(out, 'runs', id, f)), `${id}: ${f}`).toBe(true);
      }
    }
    expect(fs.readFileSync(path.join(out, 'report.md'), 'utf8')).toContain('| `layernorm` |');
    // Collected jobs leave the queue.
    const queue = new Queue(q, { connection: bullConnection(parseRedisUrl(redis.url)) });
    expect(await queue.getJobCounts('waiting', 'active', 'completed', 'failed')).toEqual({ waiting: 0, active: 0, completed: 0, failed: 0 });
    await queue.close();
  }, 300_000);

  it('--detach only enqueues (twice is a no-op), --status shows the queue, and a later sweep collects', async () => {
    const q = queueName();
    const out = path.join(tmpDir(), 'detached');
    const o: SweepOptions = { ...grid, model, tasks: ['mrpc'], train: ['bias'], queue: redis.url, queueName: q, out };
    const logs: string[] = [];
    expect(await sweep({ ...o, detach: true, log: (l) => logs.push(l) })).toMatchObject({ detached: true, done: 0, pending: 1, report: null });
    await sweep({ ...o, detach: true, log: (l) => logs.push(l) });
    expect(logs.filter((l) => l.startsWith('queue '))).toEqual([
      `queue ${q} at ${redis.url}: 1 cells added, 0 failed ones retried, 0 there already`,
      `queue ${q} at ${redis.url}: 0 cells added, 0 failed ones retried, 1 there already`,
    ]);
    expect(await sweepStatus({ out, queue: redis.url, queueName: q })).toEqual([
      `${out}: 1 cells: 0 done, 0 failed, 1 not finished`, `queue ${q} at ${redis.url}: 0 worker(s) connected`, '  1 waiting',
    ]);
    const controller = new AbortController();
    const worker = runWorker({ queue: redis.url, queueName: q, data: GLUE, threads: 1, workDir: tmpDir(), name: 'in-test', cacheDir: false, signal: controller.signal });
    const r = await sweep(o);
    controller.abort();
    expect(await worker).toEqual({ processed: 1, failed: 0 });
    expect(r).toMatchObject({ done: 1, failed: 0, detached: false });
    expect(readResults(out).get('MRPC-bias-s42-lr1e-2')!.worker).toBe('in-test');
  });

  it('a worker without the task\'s GLUE data fails the cell with that reason, and the sweep records it', async () => {
    const q = queueName();
    const out = path.join(tmpDir(), 'nodata');
    const controller = new AbortController();
    const worker = runWorker({ queue: redis.url, queueName: q, data: tmpDir(), threads: 1, workDir: tmpDir(), name: 'empty', signal: controller.signal });
    const r = await sweep({ ...grid, model, tasks: ['rte'], train: ['bias'], queue: redis.url, queueName: q, out });
    controller.abort();
    await worker;
    expect(r).toMatchObject({ done: 0, failed: 1 });
    expect(readResults(out).get('RTE-bias-s42-lr1e-2')!.error).toMatch(/^GLUE RTE data not found \(looked in .*\); run `modtune data pull RTE` or pass --data DIR .* \(worker empty\)$/);
    expect(fs.readFileSync(path.join(out, 'report.md'), 'utf8')).toContain('GLUE RTE data not found');
  });

  it('a worker refuses a cell for another base model (its own --model) or another modtune version, and says why', async () => {
    const q = queueName();
    const other = writeTinyModel(path.join(tmpDir(), 'other'), { seed: 7 });
    const controller = new AbortController();
    const worker = runWorker({ queue: redis.url, queueName: q, model: other, data: GLUE, threads: 1, workDir: tmpDir(), name: 'pinned', signal: controller.signal });
    const out = path.join(tmpDir(), 'refused');
    const r = await sweep({ ...grid, model, tasks: ['rte'], train: ['bias'], queue: redis.url, queueName: q, out });
    expect(r).toMatchObject({ done: 0, failed: 1 });
    const sha = sha256File(model);
    expect(readResults(out).get('RTE-bias-s42-lr1e-2')!.error).toBe(
      `worker pinned refuses cell RTE-bias-s42-lr1e-2: its base model has sha256 ${sha.slice(0, 12)}…, this worker's --model ${other} has ${sha256File(other).slice(0, 12)}…`);

    // A job from another modtune version, put on the queue by hand.
    const queue = new Queue<CellJobData>(q, { connection: bullConnection(parseRedisUrl(redis.url)) });
    const ref = { sha256: sha256File(other), source: other, name: 'model.onnx' };
    await queue.add('x', {
      format: JOB_FORMAT, modtuneVersion: '0.0.1-elsewhere', settingsHash: 'f'.repeat(64), cell: { id: 'RTE-bias-s1-lr1e-2', task: 'RTE', selection: 'bias', seed: 1, lr: 1e-2 },
      settings: {}, base: ref, tokenizer: ref, trainableCount: 1, totalCount: 1,
    }, { jobId: 'other-version' });
    await waitFor(async () => (await queue.getJobState('other-version')) === 'failed', 30_000);
    expect((await queue.getJob('other-version'))!.failedReason).toMatch(/^worker pinned refuses cell RTE-bias-s1-lr1e-2: the sweep runs modtune 0\.0\.1-elsewhere, this worker modtune \d+\.\d+\.\d+/);
    await queue.close();
    controller.abort();
    await worker;
  });

  it('a worker fetches the base model and tokenizer over http, uses them only when their sha256 matches the job\'s', async () => {
    const other = writeTinyModel(path.join(tmpDir(), 'other'), { seed: 9 });
    let served = model;
    const server = http.createServer((req, res) => {
      const file = req.url === '/model.onnx' ? served : req.url === '/vocab.txt' ? path.join(path.dirname(model), 'vocab.txt') : undefined;
      if (!file) return void res.writeHead(404).end();
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      fs.createReadStream(file).pipe(res);
    });
    const port = await new Promise<number>((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as import('node:net').AddressInfo).port)));
    const base = `http://127.0.0.1:${port}`;
    try {
      const q = queueName();
      const workDir = tmpDir();
      const controller = new AbortController();
      const worker = runWorker({ queue: redis.url, queueName: q, data: GLUE, threads: 1, workDir, name: 'fetcher', cacheDir: false, signal: controller.signal });
      const urls = { modelUrl: `${base}/model.onnx`, tokenizerUrl: `${base}/vocab.txt`, queue: redis.url, queueName: q };
      const ok = path.join(tmpDir(), 'fetched');
      expect(await sweep({ ...grid, model, tasks: ['mrpc'], train: ['bias'], ...urls, out: ok })).toMatchObject({ done: 1, failed: 0 });
      expect(fs.readdirSync(path.join(workDir, 'files')).sort()).toEqual([`${sha256File(model).slice(0, 16)}-model.onnx`, `${sha256File(path.join(path.dirname(model), 'vocab.txt')).slice(0, 16)}-vocab.txt`].sort());

      // The URL now serves other bytes: the worker refuses them (a fresh worker folder, nothing cached).
      served = other;
      controller.abort();
      await worker;
      const controller2 = new AbortController();
      const worker2 = runWorker({ queue: redis.url, queueName: q, data: GLUE, threads: 1, workDir: tmpDir(), name: 'fetcher2', cacheDir: false, signal: controller2.signal });
      const bad = path.join(tmpDir(), 'tampered');
      expect(await sweep({ ...grid, model, tasks: ['rte'], train: ['bias'], ...urls, out: bad })).toMatchObject({ done: 0, failed: 1 });
      expect(readResults(bad).get('RTE-bias-s42-lr1e-2')!.error).toBe(
        `worker fetcher2 refuses cell RTE-bias-s42-lr1e-2: base model: ${base}/model.onnx has sha256 ${sha256File(other).slice(0, 12)}…, the job wants ${sha256File(model).slice(0, 12)}…; refusing it`);
      controller2.abort();
      await worker2;
    } finally {
      await new Promise((r) => server.close(r));
    }
  });

  it('a Redis that goes away while the sweep waits is an error within the --queue-timeout, not a hang', async () => {
    const own = await startRedis({ own: true });
    let stopped = false;
    try {
      const out = path.join(tmpDir(), 'lost');
      const lines: string[] = [];
      const waiting = sweep({ ...grid, model, tasks: ['rte'], train: ['bias'], out, queue: own.url, queueName: 'modtune-lost', pollMs: 100, queueLostMs: 2000, log: (l) => lines.push(l) });
      const failed = expect(waiting).rejects.toThrow(`lost Redis at ${own.url}: no answer for 2 s with 1 cells outstanding; the results collected so far are in ${out}, and queued cells stay on the queue if the server comes back: run the same sweep command again to collect them`);
      await waitFor(() => lines.some((l) => l.includes('1 cells added')), 30_000);
      await own.stop();
      stopped = true;
      const t0 = Date.now();
      await failed;
      expect(Date.now() - t0).toBeLessThan(8000);
    } finally {
      if (!stopped) await own.stop();
    }
  }, 60_000);
});
