/**
 * File-system failures are the user's to fix (a read-only folder, a full disk, a file where a folder
 * should be), not bugs: the CLI prints them as one line naming the path and the cause.
 */

import * as fs from 'node:fs';

/** What each errno means for the user, in words. */
const CAUSES: Record<string, string> = {
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EROFS: 'read-only file system',
  ENOSPC: 'no space left on the device (disk full)',
  EDQUOT: 'disk quota exceeded',
  EFBIG: 'file too large for the file system',
  ENOTDIR: 'a part of the path is not a folder',
  EISDIR: 'is a folder, expected a file',
  ENOENT: 'no such file or folder',
  EEXIST: 'already exists',
  ENOTEMPTY: 'folder not empty',
  ENAMETOOLONG: 'name too long',
  ELOOP: 'too many symbolic links',
  EMFILE: 'too many open files',
  ENFILE: 'too many open files in the system',
  EBUSY: 'busy (in use by another process)',
  EXDEV: 'cannot move across file systems',
  EIO: 'input/output error (the disk or file system failed)',
  ETXTBSY: 'file busy',
};

/** One line for a Node file-system error (`Error` with `code` and `path`), or undefined for anything else. */
export function fsErrorMessage(e: unknown): string | undefined {
  const err = e as NodeJS.ErrnoException & { dest?: string };
  if (!(e instanceof Error) || typeof err.code !== 'string') return undefined;
  let cause = CAUSES[err.code];
  // mkdir -p through a file fails with EEXIST on the file: say what is wrong with it.
  if (err.code === 'EEXIST' && err.syscall === 'mkdir' && err.path && isNonFolder(err.path)) cause = 'is a file, expected a folder';
  if (!cause) return undefined;
  const where = err.path ? (err.dest ? `${err.path} → ${err.dest}` : err.path) : undefined;
  // Without a path (a write to an open descriptor) the syscall at least says what was being done.
  return `${where ?? `${err.syscall ?? 'file operation'}`}: ${cause} (${err.code})`;
}

function isNonFolder(p: string): boolean {
  try {
    return !fs.statSync(p).isDirectory();
  } catch {
    return false;
  }
}
