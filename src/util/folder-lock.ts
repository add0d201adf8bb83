/**
 * One writer per folder: an exclusive lock file inside it, created atomically and holding the
 * writer's PID and host. A lock whose process is gone (killed, crashed) is taken over; a live one
 * refuses the second writer. Temporary files named after a PID are swept only once that process is
 * gone, so a sweep never pulls a file from under a writer that is still running.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ModtuneError } from '../errors.js';

/** The lock file's name inside the locked folder. */
export const LOCK_FILE = '.modtune.lock';

export interface FolderLock {
  dir: string;
  file: string;
  /** Remove the lock (idempotent; also done when the process exits). */
  release(): void;
}

interface LockOwner {
  pid: number;
  host: string;
  command: string;
  since: string;
}

/**
 * Whether a process with this PID runs on this machine (EPERM: it runs, as another user). A zombie
 * (exited, not yet reaped by its parent) does not run.
 */
export function isProcessAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
  return !isZombie(pid);
}

function isZombie(pid: number): boolean {
  try {
    // /proc/<pid>/stat: "pid (command) state ..."; the command may hold spaces and parentheses.
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) === 'Z';
  } catch {
    return false; // not Linux, or gone since the check above
  }
}

/** How long a writer that is just dying (a killed parent's child, say) gets to let go of its lock. */
const DYING_GRACE_MS = 1000;

/** Whether the lock's owner is gone, waiting up to DYING_GRACE_MS for it to go. */
function isStaleSoon(file: string): { stale: boolean; held: LockOwner | null } {
  const sleeper = new Int32Array(new SharedArrayBuffer(4));
  for (let waited = 0; ; waited += 50) {
    if (!fs.existsSync(file)) return { stale: true, held: null };
    const held = readOwner(file);
    if (isStale(held) || waited >= DYING_GRACE_MS) return { stale: isStale(held), held };
    Atomics.wait(sleeper, 0, 0, 50);
  }
}

function readOwner(file: string): LockOwner | null {
  try {
    const v = JSON.parse(fs.readFileSync(file, 'utf8')) as LockOwner;
    return Number.isInteger(v.pid) ? v : null;
  } catch {
    return null;
  }
}

/** A lock held by a process that is gone (on this host); one from another host is never stale. */
function isStale(owner: LockOwner | null): boolean {
  if (!owner) return true; // written whole by link(), so an unreadable lock is damage, not a writer mid-way
  return owner.host === os.hostname() && !isProcessAlive(owner.pid);
}

function describe(owner: LockOwner | null): string {
  if (!owner) return 'another process';
  return `${owner.command} (PID ${owner.pid}${owner.host === os.hostname() ? '' : ` on ${owner.host}`}, since ${owner.since})`;
}

/**
 * Refuse early (before a long preparation) when a live process holds the lock of `dir`; the lock
 * itself is taken with `acquireFolderLock`, which checks again.
 */
export function checkUnlocked(dir: string): void {
  const file = path.join(dir, LOCK_FILE);
  if (!fs.existsSync(file)) return;
  const { stale, held } = isStaleSoon(file);
  if (!stale) throw inUse(dir, file, held);
}

function inUse(dir: string, file: string, held: LockOwner | null): ModtuneError {
  return new ModtuneError(`${dir} is in use by ${describe(held)}; one writer per folder: wait for it to finish or stop it (remove ${file} only if that process is gone)`);
}

/**
 * Take the lock of `dir` (which must exist) for `command`, or throw a one-line ModtuneError naming
 * the folder and the process that holds it.
 */
export function acquireFolderLock(dir: string, command: string): FolderLock {
  const file = path.join(dir, LOCK_FILE);
  const owner: LockOwner = { pid: process.pid, host: os.hostname(), command, since: new Date().toISOString() };
  // The lock is written whole to a private file and linked into place: link() fails if the lock
  // exists (as O_EXCL does), and a reader never sees a half-written lock.
  const mine = path.join(dir, `${LOCK_FILE}.tmp-${process.pid}`);
  fs.writeFileSync(mine, `${JSON.stringify(owner)}\n`);
  try {
    for (let attempt = 0; ; attempt++) {
      try {
        fs.linkSync(mine, file);
        break;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      }
      const mineAlready = readOwner(file);
      if (mineAlready?.pid === process.pid && mineAlready.host === owner.host) throw new ModtuneError(`${dir} is already locked by this process (${mineAlready.command})`);
      const { stale, held } = isStaleSoon(file);
      if (!stale || attempt >= 3) {
        throw inUse(dir, file, held);
      }
      takeOverStale(file, held);
    }
  } finally {
    fs.rmSync(mine, { force: true });
  }
  let released = false;
  const release = () => {
    if (released) return;
    released = true;
    process.off('exit', release);
    const held = readOwner(file);
    if (held && held.pid === process.pid && held.host === owner.host) fs.rmSync(file, { force: true });
  };
  process.on('exit', release);
  return { dir, file, release };
}

/**
 * Move a stale lock aside and drop it. Renaming is atomic, so of two processes taking over the same
 * stale lock only one moves it; if what was moved turns out to be a fresh lock (another process took
 * the stale one over first), it is put back.
 */
function takeOverStale(file: string, stale: LockOwner | null): void {
  const aside = `${file}.stale-${process.pid}`;
  try {
    fs.renameSync(file, aside);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw e;
  }
  const moved = readOwner(aside);
  if (moved && (!stale || moved.pid !== stale.pid || moved.since !== stale.since)) {
    try {
      fs.linkSync(aside, file);
    } catch {
      // A third process locked meanwhile: its lock stands, and the next attempt reports it.
    }
  }
  fs.rmSync(aside, { force: true });
}

/** The PID a temporary name carries: `x.tmp-<pid>`, `x.tmp-<pid>-<time>`, `.tmp-step-3-<pid>`, `best.old-<pid>`. */
export function tempOwner(name: string): number | null {
  const m = /^\.tmp-.*-(\d+)$/.exec(name) ?? /\.(?:tmp|old|stale)-(\d+)(?:-\d+)?$/.exec(name);
  return m ? Number(m[1]) : null;
}

/**
 * Remove the entries of `dir` that `isTemp` calls temporary and whose owner process is gone (or is
 * this process). A temporary of a live process stays: it is still being written.
 */
export function sweepDeadTemps(dir: string, isTemp: (name: string) => boolean): void {
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return;
  }
  for (const n of names) {
    if (!isTemp(n)) continue;
    const pid = tempOwner(n);
    if (pid !== null && pid !== process.pid && isProcessAlive(pid)) continue;
    fs.rmSync(path.join(dir, n), { recursive: true, force: true });
  }
}
