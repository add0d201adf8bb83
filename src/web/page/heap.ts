/**
 * Will it fit? onnxruntime-web runs in 32-bit WebAssembly, whose heap is at most 4 GiB; loading a
 * model holds its bytes and the initialized weights at once, so about twice the file plus working
 * memory. Checked before loading, so a page never half-loads a model it cannot hold. The page can
 * lower the limit (`?heapLimitMiB=`) to see how it behaves on a smaller device.
 */
export const WASM_HEAP_MAX = 4 * 2 ** 30;
const WORKING_MEMORY = 64 * 2 ** 20;

export function formatMiB(bytes: number): string {
  return bytes >= 2 ** 30 ? `${(bytes / 2 ** 30).toFixed(2)} GiB` : `${(bytes / 2 ** 20).toFixed(1)} MiB`;
}

/** A file size for people: KiB below a MiB. */
export function formatSize(bytes: number): string {
  return bytes < 2 ** 20 ? `${(bytes / 2 ** 10).toFixed(1)} KiB` : formatMiB(bytes);
}

/** Why `bytes` of model files cannot be loaded under `limit`, or undefined if they can. */
export function heapProblem(what: string, bytes: number, limit: number): string | undefined {
  const need = 2 * bytes + WORKING_MEMORY;
  if (need <= limit) return undefined;
  const cap = limit < WASM_HEAP_MAX ? `this page's limit of ${formatMiB(limit)}` : `onnxruntime-web's WebAssembly heap (${formatMiB(WASM_HEAP_MAX)} at most)`;
  return `${what} (${formatMiB(bytes)}) needs about ${formatMiB(need)} of WebAssembly memory, more than ${cap}; serve a smaller model (e.g. bert-mini) or use 'modtune predict' under Node`;
}
