/** The folder lock's liveness test: a writer that has exited but is not yet reaped holds nothing. */
import { afterAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { acquireFolderLock, isProcessAlive, LOCK_FILE } from '../../src/util/folder-lock.js';
import { removeTmpDirs, tmpDir } from '../helpers/paths.js';

afterAll(removeTmpDirs);

/** A zombie: a child that exited under a parent (`sleep`, after exec) that never waits for it. */
async function zombie(): Promise<{ pid: number; stop: () => void }> {
  const parent = spawn('bash', ['-c', 'sleep 0 & echo $!; exec sleep 30'], { stdio: ['ignore', 'pipe', 'ignore'] });
  const pid = await new Promise<number>((resolve) => parent.stdout.once('data', (d) => resolve(Number(String(d).trim()))));
  for (let i = 0; i < 100 && !fs.readFileSync(`/proc/${pid}/stat`, 'utf8').includes(') Z'); i++) await new Promise((r) => setTimeout(r, 20));
  return { pid, stop: () => parent.kill('SIGKILL') };
}

describe('folder lock', () => {
  it('counts a zombie as gone and takes over its lock', async () => {
    const z = await zombie();
    try {
      expect(fs.readFileSync(`/proc/${z.pid}/stat`, 'utf8')).toContain(') Z');
      expect(isProcessAlive(z.pid)).toBe(false);
      const dir = tmpDir();
      fs.writeFileSync(path.join(dir, LOCK_FILE), JSON.stringify({ pid: z.pid, host: os.hostname(), command: 'train', since: new Date().toISOString() }));
      const lock = acquireFolderLock(dir, 'train');
      expect(JSON.parse(fs.readFileSync(path.join(dir, LOCK_FILE), 'utf8')).pid).toBe(process.pid);
      lock.release();
    } finally {
      z.stop();
    }
  });

  it('still refuses a live writer, after a short grace', () => {
    const dir = tmpDir();
    const live = spawn('sleep', ['30']);
    try {
      fs.writeFileSync(path.join(dir, LOCK_FILE), JSON.stringify({ pid: live.pid, host: os.hostname(), command: 'pretrain', since: new Date().toISOString() }));
      const t0 = Date.now();
      expect(() => acquireFolderLock(dir, 'train')).toThrow(new RegExp(`${dir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} is in use by pretrain \\(PID ${live.pid}`));
      expect(Date.now() - t0).toBeGreaterThanOrEqual(900);
    } finally {
      live.kill('SIGKILL');
    }
  });
});
