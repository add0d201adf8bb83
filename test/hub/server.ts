import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createHash } from 'node:crypto';

export interface LoggedRequest {
  method: string;
  path: string;
  range?: string;
  ifRange?: string;
  authorization?: string;
}

/**
 * A stand-in for the Hugging Face Hub on 127.0.0.1: serves `files` under
 * `/<repo>/resolve/<revision>/<file>` with Range support, and can misbehave on demand.
 */
export class FakeHub {
  /** URL path → content. */
  readonly files = new Map<string, Uint8Array>();
  readonly requests: LoggedRequest[] = [];
  /** URL path → path to redirect to (302). */
  readonly redirects = new Map<string, string>();
  /** URL path → status to answer instead of the file. */
  readonly statuses = new Map<string, number>();
  /** URL path → cut the connection after this many body bytes, once. */
  readonly cutOnce = new Map<string, number>();
  /** Answer Range requests with the whole file (200), as some servers do. */
  ignoreRange = false;
  /** URL path → extra response headers (e.g. the Hub's X-Linked-Etag / X-Linked-Size on a redirect). */
  readonly headers = new Map<string, Record<string, string>>();
  /** URL paths answered without Content-Length (chunked), as a proxy that re-encodes may. */
  readonly undeclared = new Set<string>();
  /** URL path → end the (undeclared-length) body cleanly after this many bytes, once. */
  readonly shortOnce = new Map<string, number>();
  private server?: http.Server;
  url = '';

  serve(repo: string, revision: string, file: string, content: Uint8Array | string): string {
    const p = `/${repo}/resolve/${encodeURIComponent(revision)}/${file}`;
    this.files.set(p, typeof content === 'string' ? new TextEncoder().encode(content) : content);
    return p;
  }

  async start(): Promise<void> {
    this.server = http.createServer((req, res) => this.handle(req, res));
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => this.server?.close(() => resolve()) ?? resolve());
  }

  requestsFor(file: string): LoggedRequest[] {
    return this.requests.filter((r) => r.path.endsWith(`/${file}`));
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    // decodeURI keeps %2F: a revision like 'refs/pr/1' stays one path segment.
    const path = decodeURI(new URL(req.url ?? '/', 'http://x').pathname);
    this.requests.push({ method: req.method ?? '', path, range: req.headers.range, ifRange: req.headers['if-range'] as string | undefined, authorization: req.headers.authorization });
    const extra = this.headers.get(path) ?? {};
    const redirect = this.redirects.get(path);
    if (redirect) {
      res.writeHead(302, { Location: redirect, ...extra }).end();
      return;
    }
    const status = this.statuses.get(path);
    if (status) {
      res.writeHead(status, { 'Content-Type': 'text/plain' }).end(`status ${status}`);
      return;
    }
    const body = this.files.get(path);
    if (!body) {
      res.writeHead(404, { 'Content-Type': 'text/plain' }).end('Entry not found');
      return;
    }
    let start = 0;
    // A strong ETag from the content, and If-Range honoured: a changed file is sent whole.
    const etag = `"${createHash('sha1').update(body).digest('hex')}"`;
    const ifRange = req.headers['if-range'];
    const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    const sized = (n: number) => (this.undeclared.has(path) ? {} : { 'Content-Length': n });
    if (m && !this.ignoreRange && (ifRange === undefined || ifRange === etag)) {
      start = Number(m[1]);
      if (start >= body.byteLength) {
        res.writeHead(416, { 'Content-Range': `bytes */${body.byteLength}`, ETag: etag, ...extra }).end();
        return;
      }
      res.writeHead(206, { ...sized(body.byteLength - start), 'Content-Range': `bytes ${start}-${body.byteLength - 1}/${body.byteLength}`, ETag: etag, ...extra });
    } else {
      res.writeHead(200, { ...sized(body.byteLength), ETag: etag, ...extra });
    }
    const rest = body.subarray(start);
    const short = this.shortOnce.get(path);
    if (short !== undefined) {
      this.shortOnce.delete(path);
      res.end(rest.subarray(0, short));
      return;
    }
    const cut = this.cutOnce.get(path);
    if (cut !== undefined) {
      this.cutOnce.delete(path);
      // Send part of the body, let it reach the socket, then drop the connection mid-file.
      res.write(rest.subarray(0, cut), () => setTimeout(() => res.socket?.destroy(), 20));
      return;
    }
    res.end(rest);
  }
}
