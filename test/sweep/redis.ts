/**
 * A Redis for the distributed-sweep tests: the one CI runs (MODTUNE_TEST_REDIS), else a
 * redis-server started here on a free loopback port and stopped afterwards. Without either the
 * tests fail, saying what to install: they are never skipped.
 */
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { Queue } from 'bullmq';
import { bullConnection, checkRedis, parseRedisUrl } from '../../src/sweep/queue/connection.js';
import { tmpDir } from '../helpers/paths.js';
import { freePort } from './helpers.js';

export interface TestRedis {
  url: string;
  stop: () => Promise<void>;
}

/** `own`: always start a private server (for a test that stops it under a running sweep). */
export async function startRedis(o: { own?: boolean } = {}): Promise<TestRedis> {
  const given = process.env.MODTUNE_TEST_REDIS;
  if (given && !o.own) {
    await checkRedis(parseRedisUrl(given, 'MODTUNE_TEST_REDIS'));
    return { url: given, stop: async () => {} };
  }
  const probe = spawnSync('redis-server', ['--version'], { encoding: 'utf8' });
  if (probe.error) {
    throw new Error('redis-server is not installed: the distributed sweep tests need a real Redis. Install it (Debian/Ubuntu: apt-get install redis-server) or set MODTUNE_TEST_REDIS=redis://HOST:PORT');
  }
  const port = await freePort();
  const dir = tmpDir('modtune-redis-');
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], { stdio: 'ignore' });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const url = `redis://127.0.0.1:${port}`;
  const end = Date.now() + 15_000;
  for (;;) {
    try {
      await checkRedis(parseRedisUrl(url));
      break;
    } catch (e) {
      if (Date.now() > end || child.exitCode !== null) {
        child.kill('SIGKILL');
        throw new Error(`redis-server did not start on port ${port}: ${(e as Error).message}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return {
    url,
    stop: async () => {
      child.kill('SIGTERM');
      await exited;
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Remove a test's queue and everything in it. */
export async function dropQueue(url: string, name: string): Promise<void> {
  const q = new Queue(name, { connection: bullConnection(parseRedisUrl(url)) });
  try {
    await q.obliterate({ force: true });
  } finally {
    await q.close();
  }
}
