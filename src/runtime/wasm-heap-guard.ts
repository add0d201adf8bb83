/**
 * A guard for a heap-corrupting bug of onnxruntime-web 1.19.2's training build, without Node
 * modules: the Node backend (./ort-training.ts) and the browser page's training worker install it
 * the same way.
 *
 * onnxruntime-web 1.19.2's getContiguousParameters and loadParametersBuffer allocate a 4-byte dims
 * array with stackAlloc and then release it with _free, i.e. they hand a stack address to the heap
 * allocator. The allocator's free lists are corrupted and a later session creation (or anything
 * that allocates) can trap with "table index is out of bounds" or silently overwrite memory.
 *
 * The guard wraps the wasm module's stackAlloc and _free so that _free ignores addresses stackAlloc
 * returned (heap and stack are disjoint, so no real heap block is ever skipped). The module object is
 * private to the bundle; it is caught while the wasm module initialises, through a one-shot setter
 * for `_free` on Object.prototype that is removed as soon as it fires (or after the first session
 * creation, whichever comes first).
 */
let heapGuard: 'pending' | 'installed' | 'unavailable' = 'pending';

export function armHeapGuard(): () => void {
  if (heapGuard !== 'pending') return () => undefined;
  const proto = Object.prototype as Record<string, unknown>;
  const disarm = () => { delete proto._free; };
  Object.defineProperty(Object.prototype, '_free', {
    configurable: true,
    set(this: Record<string, unknown>, value: unknown) {
      if (typeof this._malloc !== 'function') {
        Object.defineProperty(this, '_free', { value, writable: true, configurable: true, enumerable: true });
        return;
      }
      disarm();
      guardModule(this, value as (ptr: number) => void);
      heapGuard = 'installed';
    },
  });
  return () => {
    disarm();
    if (heapGuard === 'pending') heapGuard = 'unavailable';
  };
}

function guardModule(module: Record<string, unknown>, free: (ptr: number) => void): void {
  const stackAddresses = new Set<number>();
  let rawFree = free;
  let rawStackAlloc: ((n: number) => number) | undefined = module.stackAlloc as ((n: number) => number) | undefined;
  const guardedFree = (ptr: number): void => {
    if (!stackAddresses.has(ptr)) rawFree(ptr);
  };
  const guardedStackAlloc = (n: number): number => {
    const ptr = rawStackAlloc!(n);
    stackAddresses.add(ptr);
    return ptr;
  };
  // Emscripten rebinds these properties lazily (`_free = a => (_free = export)(a)`), so they are
  // accessors that keep the latest raw function and always hand out the guarded one.
  Object.defineProperty(module, '_free', { configurable: true, enumerable: true, get: () => guardedFree, set: (f) => { rawFree = f; } });
  Object.defineProperty(module, 'stackAlloc', { configurable: true, enumerable: true, get: () => guardedStackAlloc, set: (f) => { rawStackAlloc = f; } });
}

/** Whether the stack-free guard is active (false if the wasm module was initialised some other way). */
export function heapGuardInstalled(): boolean {
  return heapGuard === 'installed';
}
