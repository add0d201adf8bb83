/**
 * Heavy commands relaunch themselves with glibc's huge-page malloc: the child sees the tunable, its
 * exit code and signals pass through the launcher, and killing the launcher outright kills the
 * child at the same moment.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { hugePagesEnv } from '../../src/cli/huge-pages.js';
import { removeTmpDirs, ROOT, tmpDir } from '../helpers/paths.js';

afterAll(removeTmpDirs);

const TUNABLE = 'glibc.malloc.hugetlb=1';

/** A stand-in for the CLI entry: relaunches like it, then reports what it sees. */
function launcherScript(): string {
  const file = path.join(tmpDir(), 'entry.mjs');
  fs.writeFileSync(file, `
import { relaunchWithHugePages } from ${JSON.stringify(path.join(ROOT, 'src/cli/huge-pages.ts'))};
if (!relaunchWithHugePages(process.argv)) {
  const mode = process.argv[3];
  process.on('SIGINT', () => { console.log('child SIGINT'); process.exit(130); });
  console.log(JSON.stringify({ pid: process.pid, tunables: process.env.GLIBC_TUNABLES ?? null }));
  if (mode === 'exit') process.exit(7);
  setInterval(() => {}, 1000);
}
`);
  return file;
}

function start(command: string, mode: string, env: NodeJS.ProcessEnv = {}) {
  const child = spawn(process.execPath, ['--import', 'tsx', launcherScript(), command, mode], {
    cwd: ROOT, env: { ...process.env, GLIBC_TUNABLES: '', MODTUNE_HUGE_PAGES: '', ...env }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (d) => { out += d; });
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  const report = async () => {
    for (let i = 0; i < 600 && !out.includes('\n'); i++) await new Promise((r) => setTimeout(r, 50));
    return JSON.parse(out.split('\n')[0]!) as { pid: number; tunables: string | null };
  };
  return { child, done, report, output: () => out };
}

/** Running: signalable and not a zombie. */
const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  return !fs.readFileSync(`/proc/${pid}/stat`, 'utf8').includes(') Z');
};

describe('huge-page relaunch', () => {
  it('chooses heavy commands only, keeps other tunables and respects the opt-out', () => {
    const env = hugePagesEnv(['node', 'modtune', 'train'], { GLIBC_TUNABLES: 'glibc.malloc.arena_max=2' });
    expect(env?.GLIBC_TUNABLES).toBe(`glibc.malloc.arena_max=2:${TUNABLE}`);
    expect(hugePagesEnv(['node', 'modtune', 'pretrain'], {})?.GLIBC_TUNABLES).toBe(TUNABLE);
    expect(hugePagesEnv(['node', 'modtune', 'info'], {})).toBeNull();
    expect(hugePagesEnv(['node', 'modtune', '--version'], {})).toBeNull();
    expect(hugePagesEnv(['node', 'modtune', 'train'], { MODTUNE_HUGE_PAGES: '0' })).toBeNull();
    expect(hugePagesEnv(['node', 'modtune', 'train'], { GLIBC_TUNABLES: 'glibc.malloc.hugetlb=0' })).toBeNull();
  });

  it('runs a heavy command in a child with the tunable and exits with its code', async () => {
    const run = start('train', 'exit');
    const seen = await run.report();
    expect(seen.tunables).toBe(TUNABLE);
    expect(seen.pid).not.toBe(run.child.pid);
    expect(await run.done).toEqual({ code: 7, signal: null });
  });

  it('runs in place when turned off', async () => {
    const run = start('train', 'exit', { MODTUNE_HUGE_PAGES: '0' });
    const seen = await run.report();
    expect(seen).toEqual({ pid: run.child.pid, tunables: '' });
    expect((await run.done).code).toBe(7);
  });

  it('forwards SIGINT to the child once and mirrors its exit', async () => {
    const run = start('train', 'wait');
    await run.report();
    run.child.kill('SIGINT');
    expect(await run.done).toEqual({ code: 130, signal: null });
    expect(run.output().match(/child SIGINT/g)).toHaveLength(1);
  });

  it('takes the child down at once when the launcher is killed outright', async () => {
    const run = start('train', 'wait');
    const { pid } = await run.report();
    expect(alive(pid)).toBe(true);
    run.child.kill('SIGKILL');
    await run.done;
    // The kernel kills the child as the launcher dies (setpriv --pdeathsig); only reaping may lag.
    for (let i = 0; i < 10 && alive(pid); i++) await new Promise((r) => setTimeout(r, 20));
    expect(alive(pid)).toBe(false);
  });
});
