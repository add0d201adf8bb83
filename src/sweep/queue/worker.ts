/**
 * `modtune worker`: take sweep cells off the BullMQ queue and train them, one at a time by default.
 * A job for another modtune version, or for a base model other than the worker's own `--model`, is
 * refused with a message that the sweep records. A worker that dies mid-job loses its lock; BullMQ's
 * stalled-job check (run by every worker) puts the job back, and another worker trains the cell
 * again from the start (a cell's result depends only on the cell: dropout-free runs repeat exactly).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { UnrecoverableError, Worker, type Job } from 'bullmq';
import { ModtuneError } from '../../errors.js';
import { sha256File } from '../../onnx/hash.js';
import { VERSION } from '../../version.js';
import { runCell } from '../cell.js';
import { bullConnection, checkRedis, DEFAULT_QUEUE_NAME, parseRedisUrl } from './connection.js';
import { fetchVerified } from './fetch.js';
import { JOB_FORMAT, MAX_TRANSFER_BYTES, RETURNED_FILES, type CellJobData, type CellJobReturn } from './job.js';

export interface WorkerOptions {
  queue: string;
  queueName?: string;
  /** This worker's own copy of the base model: jobs for another sha256 are refused. */
  model?: string;
  /** GLUE folder (see resolveGlueDir). */
  data?: string;
  threads?: number;
  /** Downloads and run folders in progress (default ~/.cache/modtune/worker or MODTUNE_CACHE). */
  workDir?: string;
  /** Cells at once (default 1). */
  concurrency?: number;
  /** BullMQ's job lock, ms (default 30000); a dead worker's job is taken again after about this long. */
  lockDuration?: number;
  /** How often the stalled-job check runs, ms (default 30000). */
  stalledInterval?: number;
  /** Times a job may be taken back from a dead worker before it fails (default 3). */
  maxStalledCount?: number;
  /** Name shown in the sweep's results (default host:pid). */
  name?: string;
  cacheDir?: string | false;
  signal?: AbortSignal;
  log?: (line: string) => void;
  /** Called once the worker listens (tests). */
  onReady?: () => void;
}

export function defaultWorkDir(): string {
  return path.join(process.env.MODTUNE_CACHE ?? path.join(os.homedir(), '.cache', 'modtune'), 'worker');
}

/** Runs until the signal aborts; the current job finishes first. */
export async function runWorker(o: WorkerOptions): Promise<{ processed: number; failed: number }> {
  const target = parseRedisUrl(o.queue);
  const log = o.log ?? (() => {});
  const name = o.name ?? `${os.hostname()}:${process.pid}`;
  const workDir = path.resolve(o.workDir ?? defaultWorkDir());
  let pinned: { file: string; sha256: string } | undefined;
  if (o.model) {
    if (!fs.existsSync(o.model)) throw new ModtuneError(`--model ${o.model}: model file not found`);
    pinned = { file: path.resolve(o.model), sha256: sha256File(o.model) };
  }
  await checkRedis(target);
  removeDeadWorkersRuns(path.join(workDir, 'runs'));
  const queueName = o.queueName ?? DEFAULT_QUEUE_NAME;
  let processed = 0;
  let failed = 0;

  const processor = async (job: Job<CellJobData, CellJobReturn>): Promise<CellJobReturn> => {
    const d = job.data;
    const refuse = (why: string) => new UnrecoverableError(`worker ${name} refuses cell ${d?.cell?.id ?? job.id}: ${why}`);
    if (d?.format !== JOB_FORMAT) throw refuse(`not a modtune sweep cell (format '${String(d?.format)}')`);
    if (d.modtuneVersion !== VERSION) throw refuse(`the sweep runs modtune ${d.modtuneVersion}, this worker modtune ${VERSION}; run the same version on both sides`);
    if (pinned && pinned.sha256 !== d.base.sha256) {
      throw refuse(`its base model has sha256 ${d.base.sha256.slice(0, 12)}…, this worker's --model ${pinned.file} has ${pinned.sha256.slice(0, 12)}…`);
    }
    log(`cell ${d.cell.id} (job ${job.id}, attempt ${job.attemptsStarted})`);
    let model: string;
    let tokenizer: string;
    try {
      model = pinned?.file ?? (await fetchVerified(d.base, path.join(workDir, 'files'), 'base model'));
      tokenizer = await fetchVerified(d.tokenizer, path.join(workDir, 'files'), 'tokenizer');
    } catch (e) {
      throw refuse((e as Error).message);
    }
    const runDir = path.join(workDir, 'runs', String(process.pid), String(job.id));
    const result = await runCell({
      cell: d.cell, settings: d.settings, model, tokenizer, runDir, data: o.data, threads: o.threads, cacheDir: o.cacheDir,
      trainableCount: d.trainableCount, totalCount: d.totalCount,
    }, { worker: name, log: (line) => log(`  ${d.cell.id}: ${line}`) });
    if (result.status === 'failed') {
      fs.rmSync(runDir, { recursive: true, force: true });
      throw new UnrecoverableError(`${result.error} (worker ${name})`);
    }
    const files: Record<string, string> = {};
    const omitted: Record<string, string> = {};
    // A run whose delta is too large to send is kept on this worker, out of the folders it clears.
    const kept = path.join(workDir, 'kept', String(job.id));
    for (const rel of RETURNED_FILES) {
      const f = path.join(runDir, rel);
      if (!fs.existsSync(f)) continue;
      const size = fs.statSync(f).size;
      if (size > MAX_TRANSFER_BYTES) omitted[rel] = `${size} bytes, above the ${MAX_TRANSFER_BYTES} bytes sent through the queue; it stays on worker ${name} in ${path.join(kept, rel)}`;
      else files[rel] = fs.readFileSync(f).toString('base64');
    }
    if (Object.keys(omitted).length) {
      fs.rmSync(kept, { recursive: true, force: true });
      fs.mkdirSync(path.dirname(kept), { recursive: true });
      fs.renameSync(runDir, kept);
    } else {
      fs.rmSync(runDir, { recursive: true, force: true });
    }
    return { result, files, omitted };
  };

  const worker = new Worker<CellJobData, CellJobReturn>(queueName, processor, {
    connection: bullConnection(target), name, concurrency: o.concurrency ?? 1, autorun: false,
    lockDuration: o.lockDuration ?? 30_000, stalledInterval: o.stalledInterval ?? 30_000, maxStalledCount: o.maxStalledCount ?? 3,
    removeOnComplete: { count: 10_000 }, removeOnFail: { count: 10_000 },
  });
  worker.on('error', (e) => log(`worker: ${e.message}`));
  worker.on('completed', (job) => { processed++; log(`cell ${job.data.cell.id}: done (score ${job.returnvalue.result.mainMetric ?? '-'})`); });
  worker.on('failed', (job, e) => { failed++; log(`cell ${job?.data?.cell?.id ?? job?.id}: failed: ${e.message}`); });
  const stopped = new Promise<void>((resolve) => {
    if (o.signal?.aborted) resolve();
    o.signal?.addEventListener('abort', () => resolve(), { once: true });
  });
  const running = worker.run();
  await worker.waitUntilReady();
  log(`worker ${name} (modtune ${VERSION}) on queue ${queueName} at ${o.queue}${pinned ? `, base ${pinned.file}` : ''}`);
  o.onReady?.();
  await stopped;
  log('stopping: finishing the current cell');
  await worker.close();
  await running;
  // Its cells are finished or back on the queue: nothing in its run folder is needed any more.
  fs.rmSync(path.join(workDir, 'runs', String(process.pid)), { recursive: true, force: true });
  return { processed, failed };
}

/** Run folders of workers on this machine that are gone (`runs/<pid>/`): their jobs went back to the queue. */
function removeDeadWorkersRuns(runs: string): void {
  if (!fs.existsSync(runs)) return;
  for (const n of fs.readdirSync(runs)) {
    if (!/^\d+$/.test(n) || Number(n) === process.pid) continue;
    try {
      process.kill(Number(n), 0);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ESRCH') fs.rmSync(path.join(runs, n), { recursive: true, force: true });
    }
  }
}
