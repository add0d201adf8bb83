/**
 * Process-wide settings for onnxruntime-node, applied before its first session.
 *
 * ONNX Runtime 1.30 for Linux and macOS carries Microsoft's 1DS telemetry client. When that client
 * starts, its platform layer opens a trace log `mat-debug-<pid>.log` in the temp folder ($TMPDIR,
 * else /tmp; the `mat-debug-` string and `traceFolderPath` sit next to each other in
 * libonnxruntime.so.1), which stays empty at the default trace level and is never removed: one stray
 * file per process (and a `.ses` session file beside it). ONNX Runtime reads
 * `ORT_DISABLE_TELEMETRY` when it creates its environment (at the first session, so setting it
 * after `import 'onnxruntime-node'` still works); `1` keeps the client from starting at all, so no
 * file and no upload. An explicit value in the environment is left alone (`ORT_DISABLE_TELEMETRY=0`
 * opts back in).
 */
export function disableOrtTelemetryByDefault(): void {
  if (typeof process === 'undefined' || !process.env) return; // a browser bundle: nothing to set
  if (process.env.ORT_DISABLE_TELEMETRY === undefined) process.env.ORT_DISABLE_TELEMETRY = '1';
}
