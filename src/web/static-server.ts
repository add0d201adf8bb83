/**
 * A small static file server (node:http) for the page and the prepared site: GET/HEAD only, each
 * URL prefix mapped to one folder, nothing outside that folder ever served (`..`, encoded
 * separators, NUL and symbolic links leading out are refused), and the headers that make the page
 * cross-origin isolated (COOP/COEP), which onnxruntime-web's WebAssembly threads need.
 */
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';

export interface Mount {
  /** URL prefix, starting and ending with '/'. */
  prefix: string;
  dir: string;
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.wasm': 'application/wasm',
  '.png': 'image/png',
  '.svg': 'image/svg+xml',
  '.tsv': 'text/tab-separated-values; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
};

/** Headers on every response: cross-origin isolation, and nothing cached across builds. */
export const ISOLATION_HEADERS: Record<string, string> = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
  'Cross-Origin-Resource-Policy': 'same-origin',
  'X-Content-Type-Options': 'nosniff',
  'Cache-Control': 'no-cache',
};

/**
 * The file a URL path names under `mount`, or undefined. The decoded path must be relative,
 * without `..` segments, backslashes or NUL, and its real path (links resolved) must stay inside
 * the mount's real folder.
 */
export function resolveStatic(mounts: Mount[], urlPath: string): string | undefined {
  let decoded: string;
  try {
    decoded = decodeURIComponent(urlPath);
  } catch {
    return undefined;
  }
  if (decoded.includes('\0') || decoded.includes('\\')) return undefined;
  const mount = [...mounts].sort((a, b) => b.prefix.length - a.prefix.length).find((m) => decoded.startsWith(m.prefix) || decoded === m.prefix.slice(0, -1));
  if (!mount) return undefined;
  let rel = decoded.slice(mount.prefix.length);
  if (rel === '' || rel.endsWith('/')) rel += 'index.html';
  const segments = rel.split('/');
  if (segments.some((s) => s === '..' || s === '.' || s === '')) return undefined;
  let root: string;
  let real: string;
  try {
    root = fs.realpathSync(mount.dir);
    real = fs.realpathSync(path.join(root, ...segments));
  } catch {
    return undefined;
  }
  if (!real.startsWith(root + path.sep)) return undefined;
  try {
    if (!fs.statSync(real).isFile()) return undefined;
  } catch {
    return undefined;
  }
  return real;
}

export function createStaticServer(mounts: Mount[]): http.Server {
  return http.createServer((req, res) => {
    for (const [k, v] of Object.entries(ISOLATION_HEADERS)) res.setHeader(k, v);
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { Allow: 'GET, HEAD', 'Content-Type': 'text/plain; charset=utf-8' }).end('method not allowed\n');
      return;
    }
    const url = new URL(req.url ?? '/', 'http://localhost');
    const file = resolveStatic(mounts, url.pathname);
    if (!file) {
      res.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8' }).end('not found\n');
      return;
    }
    const size = fs.statSync(file).size;
    res.writeHead(200, { 'Content-Type': TYPES[path.extname(file).toLowerCase()] ?? 'application/octet-stream', 'Content-Length': String(size) });
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    const stream = fs.createReadStream(file);
    stream.on('error', () => res.destroy());
    stream.pipe(res);
  });
}
