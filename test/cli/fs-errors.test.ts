/**
 * File-system failures are the user's to fix: one line naming the path and the cause, exit 1, never
 * "internal error … please report it".
 */
import { afterAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fsErrorMessage } from '../../src/cli/fs-errors.js';
import { ROOT, tmpDir } from '../helpers/paths.js';

const dir = tmpDir('modtune-fserr-');
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function thrown(f: () => unknown): unknown {
  try {
    f();
  } catch (e) {
    return e;
  }
  throw new Error('expected a throw');
}

function modtune(...args: string[]) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src/cli/main.ts'), ...args], { cwd: ROOT, encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('file-system errors', () => {
  const file = path.join(dir, 'a-file');
  fs.writeFileSync(file, 'x');

  it('each errno becomes one line naming the path and the cause', () => {
    expect(fsErrorMessage(thrown(() => fs.mkdirSync(path.join(file, 'sub'))))).toBe(`${path.join(file, 'sub')}: a part of the path is not a folder (ENOTDIR)`);
    expect(fsErrorMessage(thrown(() => fs.openSync(dir, 'w')))).toBe(`${dir}: is a folder, expected a file (EISDIR)`);
    expect(fsErrorMessage(thrown(() => fs.writeFileSync('/dev/full', 'x')))).toMatch(/^(\/dev\/full|write): no space left on the device \(disk full\) \(ENOSPC\)$/);
    const rofs = Object.assign(new Error("EROFS: read-only file system, open '/mnt/ro/x'"), { code: 'EROFS', path: '/mnt/ro/x', syscall: 'open' });
    expect(fsErrorMessage(rofs)).toBe('/mnt/ro/x: read-only file system (EROFS)');
    const denied = Object.assign(new Error('EACCES'), { code: 'EACCES', path: '/root/x', syscall: 'open' });
    expect(fsErrorMessage(denied)).toBe('/root/x: permission denied (EACCES)');
    expect(fsErrorMessage(new Error('not fs'))).toBeUndefined();
    expect(fsErrorMessage(Object.assign(new Error('x'), { code: 'ERR_SOMETHING' }))).toBeUndefined();
  });

  it('the CLI prints them in one line and exits 1', () => {
    const notDir = modtune('build', '--preset', 'bert-tiny', '--out', path.join(file, 'model.onnx'));
    expect(notDir.code).toBe(1);
    expect(notDir.stderr).not.toMatch(/internal error|please report/);
    expect(notDir.stderr.trim().split('\n')).toHaveLength(1);
    expect(notDir.stderr).toMatch(new RegExp(`^modtune: ${file.replaceAll('/', '\\/')}.*: (a part of the path is not a folder \\(ENOTDIR\\)|is a file, expected a folder \\(EEXIST\\))\\n$`));
    const isDir = modtune('inspect', dir);
    expect(isDir.code).toBe(1);
    expect(isDir.stderr).not.toMatch(/internal error|please report/);
    expect(isDir.stderr.trim().split('\n')).toHaveLength(1);
    expect(isDir.stderr).toContain(dir);
  });
});
