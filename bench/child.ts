import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

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
