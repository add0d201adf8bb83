/**
 * The local pool: up to N cells at once, in N Node processes (see cell-process.ts) that take cells
 * one after another, with ONNX Runtime's threads divided among them so the processes do not
 * oversubscribe the cores.
 */
import { fork, type ChildProcess } from 'node:child_process';
import * as os from 'node:os';
import { fileURLToPath } from 'node:url';
import type { CellJob } from './cell.js';
import type { FromChild, ToChild } from './cell-process.js';
import type { CellResult } from './results.js';

export interface PoolTask {
  job: CellJob;
  logFile: string;
}

export interface PoolOptions {
  workers: number;
  /** Called as each cell finishes (in finishing order). */
  onResult: (r: CellResult) => void;
  signal?: AbortSignal;
}

/** ONNX Runtime intra-op threads per process: the cores shared out, at least one each. */
export function threadsPerWorker(workers: number, cores = os.availableParallelism()): number {
  return Math.max(1, Math.floor(cores / workers));
}

/** Run when compiled (dist/*.js) as plain Node; from the TypeScript sources through tsx. */
function childEntry(): { file: string; execArgv: string[] } {
  const self = fileURLToPath(import.meta.url);
  const ts = self.endsWith('.ts');
  // tsx resolved from here, so the child finds it whatever the working folder.
  return { file: self.replace(/pool\.(ts|js)$/, `cell-process.${ts ? 'ts' : 'js'}`), execArgv: ts ? ['--import', import.meta.resolve('tsx')] : [] };
}

/**
 * Run the tasks; resolves with `interrupted` true when the signal stopped it (running cells were
 * told to checkpoint and stop; they are not recorded and resume next time).
 */
export async function runPool(tasks: PoolTask[], o: PoolOptions): Promise<{ interrupted: boolean }> {
  const entry = childEntry();
  const queue = [...tasks];
  const running = new Set<ChildProcess>();
  let interrupted = false;
  const onAbort = () => {
    interrupted = true;
    for (const c of running) c.kill('SIGINT');
  };
  o.signal?.addEventListener('abort', onAbort);

  /** One lane: a process that runs cells one after another, replaced when it dies. */
  const lane = async () => {
    let child: ChildProcess | undefined;
    let stderr = '';
    let waiting: ((m: FromChild | { type: 'exit'; code: number | null; signal: NodeJS.Signals | null }) => void) | undefined;
    const start = () => {
      const c = fork(entry.file, [], { execArgv: entry.execArgv, stdio: ['ignore', 'ignore', 'pipe', 'ipc'], serialization: 'json' });
      stderr = '';
      c.stderr!.on('data', (d) => { stderr = (stderr + String(d)).slice(-4000); });
      c.on('message', (m: FromChild) => waiting?.(m));
      c.on('exit', (code, signal) => {
        running.delete(c);
        if (child === c) child = undefined;
        waiting?.({ type: 'exit', code, signal });
      });
      running.add(c);
      return c;
    };
    while (queue.length && !interrupted) {
      const task = queue.shift()!;
      child ??= start();
      const reply = await new Promise<FromChild | { type: 'exit'; code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
        waiting = resolve;
        const msg: ToChild = { type: 'run', job: task.job, logFile: task.logFile };
        child!.send(msg);
      });
      waiting = undefined;
      if (reply.type === 'result') o.onResult(reply.result);
      else if (reply.type === 'exit' && !interrupted) {
        // The process died without a result (crash, out of memory, killed): the cell failed.
        const why = reply.signal ? `the cell's process was killed by ${reply.signal}` : `the cell's process exited with code ${reply.code}`;
        const last = crashLine(stderr);
        const c = task.job.cell;
        o.onResult({
          id: c.id, task: c.task, selection: c.selection, seed: c.seed, lr: c.lr,
          trainableCount: task.job.trainableCount, totalCount: task.job.totalCount, metrics: null, mainMetric: null,
          status: 'failed', error: last ? `${why}: ${last}` : why, run: task.job.runDir, steps: null, bestStep: null,
          wallSeconds: 0, worker: 'local', finishedAt: new Date().toISOString(),
        });
      }
    }
    if (child) {
      const c = child;
      const exited = new Promise<void>((resolve) => c.once('exit', () => resolve()));
      if (c.connected) c.disconnect();
      await exited;
    }
  };

  await Promise.all(Array.from({ length: Math.max(1, Math.min(o.workers, queue.length)) }, lane));
  o.signal?.removeEventListener('abort', onAbort);
  return { interrupted };
}

/** The line of a dead process's stderr that says what went wrong (Node ends with its version line). */
export function crashLine(stderr: string): string | undefined {
  const lines = stderr.split('\n').map((l) => l.trim()).filter(Boolean);
  return lines.find((l) => /^(\w*Error|Error)(\s*\[\w+\])?: /.test(l)) ?? lines.filter((l) => !/^(Node\.js v|at )/.test(l)).at(-1);
}
