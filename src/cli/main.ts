import { Command, CommanderError } from 'commander';
import { ModtuneError } from '../errors.js';
import { fsErrorMessage } from './fs-errors.js';
import { VERSION } from '../version.js';
import { commands } from './commands/index.js';
import { relaunchWithHugePages } from './huge-pages.js';

export function buildProgram(): Command {
  const program = new Command('modtune')
    .description('Fine-tune only the transformer modules you choose, with ONNX Runtime.')
    .version(VERSION)
    .showHelpAfterError()
    .exitOverride();
  for (const register of commands) register(program);
  return program;
}

/** Run the CLI. User errors print one line and exit 1; no stack traces for bad input. */
export async function main(argv: string[]): Promise<void> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
  } catch (e) {
    if (e instanceof CommanderError) {
      process.exitCode = e.exitCode === 0 ? 0 : 1;
      return;
    }
    const fsError = fsErrorMessage(e);
    if (e instanceof ModtuneError) {
      process.stderr.write(`modtune: ${e.message}\n`);
    } else if (fsError) {
      process.stderr.write(`modtune: ${fsError}\n`);
      if (process.env.MODTUNE_DEBUG) process.stderr.write(`${(e as Error).stack}\n`);
    } else {
      const err = e as Error;
      process.stderr.write(`modtune: internal error: ${err?.message ?? String(e)}\n`);
      if (process.env.MODTUNE_DEBUG) process.stderr.write(`${err?.stack}\n`);
      else process.stderr.write('modtune: set MODTUNE_DEBUG=1 for the stack trace and please report it\n');
    }
    process.exitCode = 1;
  }
}

const isEntry = process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href;
if (isEntry && !relaunchWithHugePages(process.argv)) void main(process.argv);
