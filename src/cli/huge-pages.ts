/**
 * Heavy commands run in a child process whose glibc malloc backs large allocations with transparent
 * huge pages (GLIBC_TUNABLES=glibc.malloc.hugetlb=1, glibc ≥ 2.35). A training step allocates and
 * touches hundreds of megabytes: ONNX Runtime's activations, and the new parameters and moments that
 * onnxruntime-node copies into fresh buffers on every step. With 4 KiB pages those buffers cost tens
 * of thousands of page faults and TLB misses per step; with 2 MiB pages a full bert-mini step at
 * 32 × 128 runs 1.3–1.9× faster (`npm run bench -- training` measures both). A tunable is read only
 * when a process starts, hence the second process.
 *
 * The child gets its own process group, so a terminal's Ctrl-C reaches it once, through this process,
 * which forwards SIGINT, SIGTERM and SIGHUP and exits the way the child did. The child starts under
 * util-linux's `setpriv --pdeathsig SIGKILL`, so the kernel kills it the moment this process dies,
 * even by SIGKILL: `kill -9` stops a run at once, as it would without the second process. Without
 * setpriv the command runs in place, with the default malloc.
 * MODTUNE_HUGE_PAGES=0 turns this off; a GLIBC_TUNABLES that already sets glibc.malloc.hugetlb is
 * respected as it is.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';

const HEAVY_COMMANDS = new Set(['train', 'pretrain', 'demo', 'sweep', 'worker', 'eval']);
const TUNABLE = 'glibc.malloc.hugetlb=1';
const SETPRIV = ['/usr/bin/setpriv', '/bin/setpriv'];
const FORWARDED: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

/** glibc's version on this machine (e.g. [2, 36]), or null (not Linux, or another C library). */
function glibcVersion(): [number, number] | null {
  if (process.platform !== 'linux') return null;
  const header = (process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined)?.header;
  const m = /^(\d+)\.(\d+)/.exec(header?.glibcVersionRuntime ?? '');
  return m ? [Number(m[1]), Number(m[2])] : null;
}

/**
 * The environment a process should start with to get huge-page malloc, or null when it already has
 * it, the user turned it off (MODTUNE_HUGE_PAGES=0) or this C library has no such tunable.
 */
export function withHugePages(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv | null {
  if (env.MODTUNE_HUGE_PAGES === '0') return null;
  if (/glibc\.malloc\.hugetlb=/.test(env.GLIBC_TUNABLES ?? '')) return null;
  const v = glibcVersion();
  if (!v || v[0] < 2 || (v[0] === 2 && v[1] < 35)) return null;
  return { ...env, GLIBC_TUNABLES: env.GLIBC_TUNABLES ? `${env.GLIBC_TUNABLES}:${TUNABLE}` : TUNABLE };
}

/** Whether `argv` (process.argv) should run in a huge-page child, and the environment to give it. */
export function hugePagesEnv(argv: string[], env: NodeJS.ProcessEnv): NodeJS.ProcessEnv | null {
  return HEAVY_COMMANDS.has(argv[2] ?? '') ? withHugePages(env) : null;
}

/**
 * Run this very command again in a huge-page child and mirror its exit; returns false (and does
 * nothing) when it should run here.
 */
export function relaunchWithHugePages(argv: string[] = process.argv): boolean {
  const env = hugePagesEnv(argv, process.env);
  const setpriv = SETPRIV.find((f) => fs.existsSync(f));
  if (!env || !setpriv) return false;
  const child = spawn(setpriv, ['--pdeathsig', 'SIGKILL', '--', process.execPath, ...process.execArgv, ...argv.slice(1)], { env, stdio: 'inherit', detached: true });
  const forward = (sig: NodeJS.Signals) => { child.kill(sig); };
  for (const sig of FORWARDED) process.on(sig, forward);
  child.on('error', (e) => {
    process.stderr.write(`modtune: could not start ${setpriv}: ${e.message}\n`);
    process.exit(1);
  });
  child.on('exit', (code, signal) => {
    for (const sig of FORWARDED) process.off(sig, forward);
    if (signal) process.kill(process.pid, signal);
    else process.exit(code ?? 1);
  });
  return true;
}
