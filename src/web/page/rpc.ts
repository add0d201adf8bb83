/**
 * Calls between the page and its workers: `{id, method, args}` in, `{id, result}` or `{id, error}`
 * out, plus `{event, data}` for progress (the loss of each training step).
 */

export type Handler = (args: any) => Promise<unknown> | unknown;

interface Request { id: number; method: string; args: unknown }
type Reply = { id: number; result: unknown } | { id: number; error: string } | { event: string; data: unknown };

interface WorkerScope {
  postMessage(message: unknown, transfer?: Transferable[]): void;
  addEventListener(type: 'message', listener: (e: MessageEvent) => void): void;
}

/** Worker side: answer requests with `handlers`; errors travel as their one-line message. */
export function serveCalls(handlers: Record<string, Handler>): { emit(event: string, data: unknown): void } {
  const scope = self as unknown as WorkerScope;
  scope.addEventListener('message', async (e: MessageEvent<Request>) => {
    const { id, method, args } = e.data;
    try {
      const handler = handlers[method];
      if (!handler) throw new Error(`unknown call '${method}'`);
      const result = await handler(args);
      scope.postMessage({ id, result } satisfies Reply, transferables(result));
    } catch (err) {
      scope.postMessage({ id, error: messageOf(err) } satisfies Reply);
    }
  });
  return { emit: (event, data) => scope.postMessage({ event, data } satisfies Reply) };
}

/** Page side. */
export class WorkerClient {
  private next = 1;
  private pending = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>();
  private listeners = new Map<string, Set<(data: any) => void>>();
  private readonly worker: Worker;

  constructor(url: URL | string, onCrash: (message: string) => void) {
    this.worker = new Worker(url, { type: 'module' });
    this.worker.addEventListener('message', (e: MessageEvent<Reply>) => {
      const m = e.data;
      if ('event' in m) {
        for (const l of this.listeners.get(m.event) ?? []) l(m.data);
        return;
      }
      const p = this.pending.get(m.id);
      if (!p) return;
      this.pending.delete(m.id);
      if ('error' in m) p.reject(new Error(m.error));
      else p.resolve(m.result);
    });
    // A worker that dies (e.g. its wasm memory could not grow) rejects what waits on it.
    this.worker.addEventListener('error', (e) => {
      e.preventDefault();
      const message = `the worker stopped: ${e.message || 'unknown error'}`;
      for (const p of this.pending.values()) p.reject(new Error(message));
      this.pending.clear();
      onCrash(message);
    });
  }

  call<T>(method: string, args: unknown = {}, transfer: Transferable[] = []): Promise<T> {
    const id = this.next++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.worker.postMessage({ id, method, args } satisfies Request, transfer);
    });
  }

  on(event: string, listener: (data: any) => void): () => void {
    let set = this.listeners.get(event);
    if (!set) this.listeners.set(event, (set = new Set()));
    set.add(listener);
    return () => set!.delete(listener);
  }
}

export function messageOf(e: unknown): string {
  const text = e instanceof Error ? e.message : typeof e === 'number' ? `onnxruntime-web native error ${e}` : String(e);
  return text.replace(/\s*\n\s*/g, ' ').trim();
}

/** ArrayBuffers inside a result move to the page instead of being copied. */
function transferables(value: unknown): Transferable[] {
  const out = new Set<ArrayBuffer>();
  const walk = (v: unknown, depth: number) => {
    if (depth > 4 || v === null || typeof v !== 'object') return;
    if (ArrayBuffer.isView(v)) {
      if (v.buffer instanceof ArrayBuffer && v.byteOffset === 0 && v.byteLength === v.buffer.byteLength) out.add(v.buffer);
      return;
    }
    for (const x of Object.values(v as Record<string, unknown>)) walk(x, depth + 1);
  };
  walk(value, 0);
  return [...out];
}
