/**
 * Long commands (train, pretrain) stop cleanly: the first SIGINT/SIGTERM aborts the command's signal,
 * so it finishes the current step, writes a checkpoint and throws its "interrupted" error, which is
 * printed as one line with exit code 130 (143 for SIGTERM); a second signal exits at once.
 */

export interface StoppableContext {
  signal: AbortSignal;
  /** Writes a line to stderr, first clearing a progress bar that owns the terminal's current line. */
  log: (line: string) => void;
}

export async function runStoppable(body: (ctx: StoppableContext) => Promise<void>, isInterrupted: (e: unknown) => e is Error): Promise<void> {
  const err = process.stderr;
  const controller = new AbortController();
  let received: NodeJS.Signals | undefined;
  const onSignal = (sig: NodeJS.Signals) => {
    if (received) {
      err.write(`\nmodtune: ${sig} again: stopping without a new checkpoint (the last one is intact)\n`);
      process.exit(sig === 'SIGTERM' ? 143 : 130);
    }
    received = sig;
    err.write(`\nmodtune: ${sig}: finishing the current step and writing a checkpoint (press Ctrl-C again to quit at once)\n`);
    controller.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const log = (line: string) => err.write(`${err.isTTY ? '\r\x1b[K' : ''}${line}\n`);
  try {
    await body({ signal: controller.signal, log });
  } catch (e) {
    if (!isInterrupted(e)) throw e;
    err.write(`modtune: ${e.message}\n`);
    process.exitCode = received === 'SIGTERM' ? 143 : 130;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
