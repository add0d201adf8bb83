/**
 * Redis for BullMQ. Before any queue is opened the server is reached once with a client that does
 * not retry, so a wrong URL or a server that is down is a one-line error within seconds rather
 * than BullMQ's (correct, for a running sweep) endless reconnecting.
 */
import { Redis } from 'ioredis';
import { ModtuneError } from '../../errors.js';

export const DEFAULT_QUEUE_NAME = 'modtune-sweep';

export interface RedisTarget {
  url: string;
  host: string;
  port: number;
  db?: number;
  username?: string;
  password?: string;
  tls: boolean;
}

export function parseRedisUrl(url: string, flag = '--queue'): RedisTarget {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new ModtuneError(`${flag} '${url}': not a URL; expected redis://HOST:PORT`);
  }
  if (u.protocol !== 'redis:' && u.protocol !== 'rediss:') throw new ModtuneError(`${flag} '${url}': expected a redis:// or rediss:// URL, got ${u.protocol}//`);
  if (!u.hostname) throw new ModtuneError(`${flag} '${url}': no host; expected redis://HOST:PORT`);
  const db = u.pathname && u.pathname !== '/' ? Number(u.pathname.slice(1)) : undefined;
  if (db !== undefined && !Number.isSafeInteger(db)) throw new ModtuneError(`${flag} '${url}': the path should be a database number, got '${u.pathname}'`);
  return {
    url, host: u.hostname.replace(/^\[|\]$/g, ''), port: u.port ? Number(u.port) : 6379, db,
    username: u.username ? decodeURIComponent(u.username) : undefined,
    password: u.password ? decodeURIComponent(u.password) : undefined, tls: u.protocol === 'rediss:',
  };
}

/** Options for BullMQ's own connections (they reconnect on their own once the sweep runs). */
export function bullConnection(t: RedisTarget): Record<string, unknown> {
  return {
    host: t.host, port: t.port, db: t.db, username: t.username, password: t.password, ...(t.tls ? { tls: {} } : {}),
    maxRetriesPerRequest: null,
  };
}

/** Reach the server once (PING) or fail with a clear message within `timeoutMs`. */
export async function checkRedis(t: RedisTarget, timeoutMs = 3000): Promise<void> {
  const client = new Redis({
    host: t.host, port: t.port, db: t.db, username: t.username, password: t.password, ...(t.tls ? { tls: {} } : {}),
    lazyConnect: true, connectTimeout: timeoutMs, maxRetriesPerRequest: 0, enableOfflineQueue: false, retryStrategy: () => null,
  });
  // The first error says why (ECONNREFUSED, ENOTFOUND...); connect() then only says it closed.
  let first: Error | undefined;
  client.on('error', (e: Error) => { first ??= e; });
  const timer = new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`no answer within ${timeoutMs / 1000} s`)), timeoutMs).unref());
  try {
    await Promise.race([client.connect().then(() => client.ping()), timer]);
  } catch (e) {
    const why = (first ?? (e as Error)).message.replace(/\.$/, '');
    throw new ModtuneError(`cannot reach Redis at ${t.url} (${why}); is redis-server running there and reachable from this machine?`);
  } finally {
    client.disconnect();
  }
}
