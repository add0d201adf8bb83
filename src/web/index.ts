/**
 * `modtune web`: prepare the site (./site.ts), bundle the page if needed (./bundle.ts) and serve
 * both (./static-server.ts) on loopback by default.
 */
import type { AddressInfo } from 'node:net';
import { ModtuneError } from '../errors.js';
import { pageDir } from './bundle.js';
import { prepareSite, type PreparedSite, type WebSiteOptions } from './site.js';
import { createStaticServer } from './static-server.js';

export { prepareSite, type PreparedSite, type WebSiteOptions } from './site.js';
export { buildPage, buildDistPage } from './bundle.js';
export type { SiteManifest } from './site-manifest.js';

export interface WebOptions extends WebSiteOptions {
  /** Default 8080; 0 picks a free port. */
  port?: number;
  /** Default 127.0.0.1 (loopback only). */
  host?: string;
  /** A built page folder to serve instead of dist/page (tests). */
  page?: string;
}

export interface WebServer {
  url: string;
  site: PreparedSite;
  page: string;
  close(): Promise<void>;
}

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '::1']);

/** Serve the page at `/` and the prepared site at `/site/`. */
export async function serveWeb(opts: WebOptions = {}): Promise<WebServer> {
  const port = opts.port ?? 8080;
  if (!Number.isSafeInteger(port) || port < 0 || port > 65535) throw new ModtuneError(`--port must be an integer from 0 to 65535, got ${opts.port}`);
  const host = opts.host ?? '127.0.0.1';
  const site = prepareSite(opts);
  const page = opts.page ?? (await pageDir({ cacheDir: opts.cacheDir }));
  const server = createStaticServer([{ prefix: '/site/', dir: site.dir }, { prefix: '/', dir: page }]);
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) => {
      reject(e.code === 'EADDRINUSE' ? new ModtuneError(`port ${port} on ${host} is in use; pick another with --port`) : e.code === 'EADDRNOTAVAIL' ? new ModtuneError(`--host ${host}: not an address of this machine`) : e);
    });
    server.listen(port, host, () => resolve());
  });
  const address = server.address() as AddressInfo;
  const shown = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return {
    url: `http://${host === 'localhost' ? 'localhost' : shown}:${address.port}/`,
    site,
    page,
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

export function isLoopback(host: string): boolean {
  return LOOPBACK.has(host) || host.startsWith('127.');
}
