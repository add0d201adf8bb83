/**
 * The sweep's side of a distributed run: put the cells on the BullMQ queue (one job id per cell, so
 * enqueuing twice is a no-op), wait, and collect each finished job into the sweep folder exactly as
 * a local cell would have left it (run folder files + delta, a results line), then drop the job.
 * A job failed in an earlier sweep is retried, as a failed local cell is.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Queue, type Job } from 'bullmq';
import { ModtuneError } from '../../errors.js';
import { sha256File } from '../../onnx/hash.js';
import { VERSION } from '../../version.js';
import type { CellJob } from '../cell.js';
import type { SweepManifest } from '../folder.js';
import type { CellResult } from '../results.js';
import { bullConnection, checkRedis, DEFAULT_QUEUE_NAME, parseRedisUrl } from './connection.js';
import { JOB_FORMAT, jobId, type CellJobData, type CellJobReturn } from './job.js';

export interface QueueOptions {
  url: string;
  queueName?: string;
  dir: string;
  manifest: SweepManifest;
  tokenizer: string;
  modelUrl?: string;
  tokenizerUrl?: string;
  detach?: boolean;
  pollMs?: number;
  /** Stop waiting when Redis has not answered for this long (default 60 s): the cells stay queued. */
  lostAfterMs?: number;
  signal?: AbortSignal;
  log: (line: string) => void;
}

const sleep = (ms: number, signal?: AbortSignal) => new Promise<void>((resolve) => {
  const t = setTimeout(done, ms);
  function done() {
    clearTimeout(t);
    signal?.removeEventListener('abort', done);
    resolve();
  }
  signal?.addEventListener('abort', done);
});

export async function runOnQueue(jobs: CellJob[], q: QueueOptions, record: (r: CellResult) => void): Promise<{ interrupted: boolean; detached: boolean }> {
  const target = parseRedisUrl(q.url);
  const m = q.manifest;
  if (sha256File(m.grid.model) !== m.base.sha256) {
    throw new ModtuneError(`${m.grid.model}: keeps its weights in external-data files; a distributed sweep sends workers one file, so save the model as a single .onnx first`);
  }
  await checkRedis(target);
  const name = q.queueName ?? DEFAULT_QUEUE_NAME;
  const queue = new Queue<CellJobData, CellJobReturn>(name, { connection: bullConnection(target) });
  queue.on('error', () => {}); // reconnects on its own; a server gone for good ends the wait below
  let redisLost = false;
  try {
    const fileRef = (file: string, url: string | undefined, sha256: string) => ({ sha256, source: url ?? path.resolve(file), name: path.basename(file) });
    const base = fileRef(m.grid.model, q.modelUrl, m.base.sha256);
    const tokenizer = fileRef(q.tokenizer, q.tokenizerUrl, sha256File(q.tokenizer));
    const outstanding = new Map<string, CellJob>();
    let added = 0;
    let retried = 0;
    for (const j of jobs) {
      const id = jobId(m.settingsHash, j.cell.id);
      const state = await queue.getJobState(id);
      if (state === 'unknown') {
        const data: CellJobData = {
          format: JOB_FORMAT, modtuneVersion: VERSION, settingsHash: m.settingsHash, cell: j.cell, settings: j.settings,
          base, tokenizer, trainableCount: j.trainableCount, totalCount: j.totalCount,
        };
        await queue.add(j.cell.id, data, { jobId: id, attempts: 1, removeOnComplete: false, removeOnFail: false });
        added++;
      } else if (state === 'failed') {
        await (await queue.getJob(id))?.retry('failed');
        retried++;
      }
      outstanding.set(id, j);
    }
    q.log(`queue ${name} at ${q.url}: ${added} cells added, ${retried} failed ones retried, ${jobs.length - added - retried} there already`);
    if (q.detach) {
      q.log(`detached: start workers with \`modtune worker --queue ${q.url}\`; collect with the same sweep command (or look with --status)`);
      return { interrupted: false, detached: true };
    }

    // BullMQ's connection retries for ever, which is right for workers; the sweep instead gives up
    // after `lostAfterMs` without an answer, so a server that went away is an error, not a hang.
    const lostAfterMs = q.lostAfterMs ?? 60_000;
    let lastContact = Date.now();
    const answered = async <T>(call: Promise<T>): Promise<T> => {
      const waited = lostAfterMs - (Date.now() - lastContact);
      let timer: NodeJS.Timeout | undefined;
      const lost = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new RedisLost()), Math.max(waited, 0));
      });
      try {
        const v = await Promise.race([call, lost]);
        lastContact = Date.now();
        return v;
      } finally {
        clearTimeout(timer);
      }
    };
    let lastNote = Date.now();
    try {
      while (outstanding.size) {
        for (const [id, j] of [...outstanding]) {
          const state = await answered(queue.getJobState(id));
          if (state !== 'completed' && state !== 'failed') continue;
          const job = await answered(queue.getJob(id));
          if (!job) continue;
          if (state === 'completed') collect(job, j, q);
          else record(failedResult(job, j));
          outstanding.delete(id);
          await answered(job.remove()).catch(() => {}); // collected; a crash before this only collects it again
        }
        if (!outstanding.size) break;
      if (q.signal?.aborted) {
        q.log(`stopped waiting; ${outstanding.size} cells stay on the queue (workers go on); run the same sweep command again to collect them`);
        return { interrupted: true, detached: false };
      }
        if (Date.now() - lastNote > 30_000) {
          lastNote = Date.now();
          const c = await answered(queue.getJobCounts('waiting', 'active', 'delayed'));
          q.log(`waiting for ${outstanding.size} cells: ${c.waiting ?? 0} queued, ${c.active ?? 0} running${(await answered(queue.getWorkersCount())) === 0 ? ' (no worker is connected: start `modtune worker --queue URL`)' : ''}`);
        }
        await sleep(q.pollMs ?? 1000, q.signal);
      }
    } catch (e) {
      if (!(e instanceof RedisLost)) throw e;
      redisLost = true;
      throw new ModtuneError(`lost Redis at ${q.url}: no answer for ${Math.round(lostAfterMs / 1000)} s with ${outstanding.size} cells outstanding; the results collected so far are in ${q.dir}, and queued cells stay on the queue if the server comes back: run the same sweep command again to collect them`);
    }
    return { interrupted: false, detached: false };
  } finally {
    // close() waits for pending commands, which never end without a server.
    if (redisLost) await queue.disconnect().catch(() => {});
    else await queue.close();
  }

  function collect(job: Job<CellJobData, CellJobReturn>, j: CellJob, o: QueueOptions): void {
    const ret = job.returnvalue;
    if (!ret?.result || typeof ret.files !== 'object') {
      record(failedResult(job, j, 'the worker returned no result'));
      return;
    }
    // Write the run folder beside its final place, then swap it in whole.
    const runDir = j.runDir;
    const tmp = `${runDir}.collect-${process.pid}`;
    fs.rmSync(tmp, { recursive: true, force: true });
    for (const [rel, b64] of Object.entries(ret.files)) {
      const dest = path.resolve(tmp, rel);
      if (!dest.startsWith(tmp + path.sep)) throw new ModtuneError(`job ${job.id}: file '${rel}' would land outside its run folder`);
      fs.mkdirSync(path.dirname(dest), { recursive: true });
      fs.writeFileSync(dest, Buffer.from(b64, 'base64'));
    }
    // The delta's tokenizer copy is the sweep's own tokenizer (not sent back).
    const deltaJson = path.join(tmp, 'delta', 'delta.json');
    if (fs.existsSync(deltaJson)) {
      const d = JSON.parse(fs.readFileSync(deltaJson, 'utf8')) as { tokenizer?: { file?: string | null; sha256?: string | null } };
      if (d.tokenizer?.file && d.tokenizer.sha256 === sha256File(o.tokenizer)) fs.copyFileSync(o.tokenizer, path.join(tmp, 'delta', path.basename(d.tokenizer.file)));
    }
    if (Object.keys(ret.omitted ?? {}).length) {
      fs.writeFileSync(path.join(tmp, 'omitted.json'), `${JSON.stringify(ret.omitted, null, 2)}\n`);
    }
    fs.rmSync(runDir, { recursive: true, force: true });
    fs.mkdirSync(path.dirname(runDir), { recursive: true });
    fs.renameSync(tmp, runDir);
    record({ ...ret.result, run: runDir });
  }
}

class RedisLost extends Error {}

function failedResult(job: Job<CellJobData, CellJobReturn>, j: CellJob, reason?: string): CellResult {
  const c = j.cell;
  return {
    id: c.id, task: c.task, selection: c.selection, seed: c.seed, lr: c.lr, trainableCount: j.trainableCount, totalCount: j.totalCount,
    metrics: null, mainMetric: null, status: 'failed', error: reason ?? job.failedReason ?? 'failed on the queue (no reason given)',
    run: j.runDir, steps: null, bestStep: null,
    wallSeconds: job.finishedOn && job.processedOn ? (job.finishedOn - job.processedOn) / 1000 : 0,
    worker: job.processedBy ?? 'queue', finishedAt: new Date().toISOString(),
  };
}

export async function queueStatus(o: { url: string; queueName?: string; manifest: SweepManifest; collected: Set<string> }): Promise<string[]> {
  const target = parseRedisUrl(o.url);
  await checkRedis(target);
  const name = o.queueName ?? DEFAULT_QUEUE_NAME;
  const queue = new Queue(name, { connection: bullConnection(target) });
  queue.on('error', () => {});
  try {
    const states = new Map<string, number>();
    for (const c of o.manifest.cells) {
      if (o.collected.has(c.id)) continue;
      const s = await queue.getJobState(jobId(o.manifest.settingsHash, c.id));
      const label = s === 'unknown' ? 'not on the queue' : s === 'completed' || s === 'failed' ? `${s}, not collected yet` : s;
      states.set(label, (states.get(label) ?? 0) + 1);
    }
    const workers = await queue.getWorkersCount();
    return [`queue ${name} at ${o.url}: ${workers} worker(s) connected`, ...[...states].map(([s, n]) => `  ${n} ${s}`)];
  } finally {
    await queue.close();
  }
}
