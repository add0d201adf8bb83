/**
 * Entry of a local pool's worker process: receives cells over IPC one at a time, runs each and
 * sends its result back; exits when the sweep disconnects. A process that crashes takes only its
 * current cell with it (recorded as failed; the pool starts a new process for the next one).
 * SIGINT/SIGTERM stop the run after its current step with a checkpoint, so the next sweep resumes it.
 */
import { TrainInterrupted } from '../train/loop.js';
import { runCell, type CellJob } from './cell.js';
import * as fs from 'node:fs';

export type ToChild = { type: 'run'; job: CellJob; logFile: string };
export type FromChild = { type: 'result'; result: import('./results.js').CellResult } | { type: 'interrupted'; message: string };

const controller = new AbortController();
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => controller.abort());
process.on('disconnect', () => process.exit(0));

process.on('message', (msg: ToChild) => {
  void (async () => {
    const log = (line: string) => fs.appendFileSync(msg.logFile, `${line}\n`);
    let reply: FromChild;
    try {
      reply = { type: 'result', result: await runCell(msg.job, { signal: controller.signal, log }) };
    } catch (e) {
      if (!(e instanceof TrainInterrupted)) throw e;
      reply = { type: 'interrupted', message: e.message };
    }
    process.send!(reply);
  })();
});
