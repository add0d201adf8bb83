import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { withHugePages } from '../src/cli/huge-pages.js';

export const BENCH_DIR = path.dirname(fileURLToPath(import.meta.url));
export const ROOT = path.resolve(BENCH_DIR, '..');

/** Run a TypeScript worker in a fresh Node process and parse the JSON line it prints last. */
export function runWorker<T = Record<string, unknown>>(worker: string, args: string[], timeoutMs = 30 * 60_000, env: Record<string, string> = {}): T {
  const r = spawnSync(process.execPath, ['--import', 'tsx', path.join(BENCH_DIR, 'workers', worker), ...args], {
    cwd: ROOT, encoding: 'utf8', timeout: timeoutMs, maxBuffer: 64 << 20, env: { ...process.env, ...env },
  });
  if (r.status !== 0) throw new Error(`${worker} ${args.join(' ')} failed (${r.status ?? r.signal}): ${r.stderr.slice(-2000)}`);
  const lines = r.stdout.trim().split('\n');
  return JSON.parse(lines[lines.length - 1]!) as T;
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

/** The environment the CLI's heavy commands run in (huge-page malloc where glibc has it; src/cli/huge-pages.ts). */
export const TOOL_ENV: Record<string, string> = { GLIBC_TUNABLES: withHugePages({ ...process.env, GLIBC_TUNABLES: '', MODTUNE_HUGE_PAGES: '' })?.GLIBC_TUNABLES ?? '' };
/** glibc's default malloc: 4 KiB pages. */
export const SMALL_PAGES_ENV: Record<string, string> = { GLIBC_TUNABLES: '' };

/**
 * A baseline measured with glibc's default malloc and with huge pages (`which`: 'both', or only
 * 'huge' / 'default'); the faster result (least `cost`), the malloc it ran with, and the other run.
 */
export function fasterMalloc<T>(run: (env: Record<string, string>) => T | null, cost: (r: T) => number, which = 'both'): { result: T; malloc: string; other: T | null } | null {
  const small = which !== 'huge' || !TOOL_ENV.GLIBC_TUNABLES ? run(SMALL_PAGES_ENV) : null;
  const huge = which !== 'default' && TOOL_ENV.GLIBC_TUNABLES ? run(TOOL_ENV) : null;
  if (!small && !huge) return null;
  const useHuge = !!huge && (!small || cost(huge) < cost(small));
  return useHuge ? { result: huge!, malloc: TOOL_ENV.GLIBC_TUNABLES!, other: small } : { result: small!, malloc: 'default', other: huge };
}
