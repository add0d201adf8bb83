import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Model } from './graph.js';

/** sha256 of a file, streamed in 8 MiB chunks (models can be gigabytes). */
export function sha256File(file: string): string {
  const h = crypto.createHash('sha256');
  const fd = fs.openSync(file, 'r');
  try {
    const buf = Buffer.allocUnsafe(8 << 20);
    for (;;) {
      const n = fs.readSync(fd, buf, 0, buf.length, null);
      if (n <= 0) break;
      h.update(buf.subarray(0, n));
    }
  } finally {
    fs.closeSync(fd);
  }
  return h.digest('hex');
}

/**
 * Identity of a base model: sha256 of the .onnx file; when its weights live in external-data files,
 * those files' hashes are folded in too (sorted by name), since the .onnx alone would not change
 * when the weights do.
 */
export function modelSha256(file: string, externalLocations: string[] = []): string {
  const main = sha256File(file);
  if (externalLocations.length === 0) return main;
  const h = crypto.createHash('sha256').update(main);
  for (const loc of [...new Set(externalLocations)].sort()) h.update(loc).update(sha256File(path.join(path.dirname(file), loc)));
  return h.digest('hex');
}

/** Hash the model's bytes when it has no file (built in memory). */
export function sha256Bytes(bytes: Uint8Array): string {
  return crypto.createHash('sha256').update(bytes).digest('hex');
}

export type { Model };
