/**
 * Errors a user can act on. The CLI prints `modtune: <message>` and exits 1 for these; the message
 * must name the file, node or field at fault and what was expected, on one line.
 */
export class ModtuneError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ModtuneError';
  }
}

/** Throw a ModtuneError unless `cond` holds. */
export function check(cond: unknown, message: string | (() => string)): asserts cond {
  if (!cond) throw new ModtuneError(typeof message === 'function' ? message() : message);
}
