import * as http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface LoggedRequest {
  method: string;
  path: string;
  range?: string;
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
    this.requests.push({ method: req.method ?? '', path, range: req.headers.range, authorization: req.headers.authorization });
    const redirect = this.redirects.get(path);
    if (redirect) {
      res.writeHead(302, { Location: redirect }).end();
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
    const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    if (m && !this.ignoreRange) {
      start = Number(m[1]);
      if (start >= body.byteLength) {
        res.writeHead(416, { 'Content-Range': `bytes */${body.byteLength}` }).end();
        return;
      }
      res.writeHead(206, { 'Content-Length': body.byteLength - start, 'Content-Range': `bytes ${start}-${body.byteLength - 1}/${body.byteLength}` });
    } else {
      res.writeHead(200, { 'Content-Length': body.byteLength });
    }
    const rest = body.subarray(start);
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
