import * as path from 'node:path';
import * as fs from 'node:fs';
import * as os from 'node:os';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
/** The shared data folder that sits beside the project (read-only). */
export const SHARED = path.resolve(ROOT, '../shared');
export const FIXTURES = path.join(SHARED, 'fixtures/onnx');
export const TORCH113 = path.join(FIXTURES, 'torch113');
export const GLUE = path.join(SHARED, 'glue');
export const VOCAB = path.join(SHARED, 'tokenizers/bert-base-uncased/vocab.txt');
export const TOKENIZER_JSON = path.join(SHARED, 'tokenizers/bert-base-uncased/tokenizer.json');
export const ORT_REFERENCE = path.join(SHARED, 'ort-reference');

/** Folders made by `tmpDir` in this test file, removed after it (see cleanup.ts). */
const made: string[] = [];

/** A new temporary folder, removed when the test file ends. */
export function tmpDir(prefix = 'modtune-test-'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  made.push(dir);
  return dir;
}

/** Remove every folder `tmpDir` made (including what tests and the processes they ran wrote there). */
export function removeTmpDirs(): void {
  for (const dir of made.splice(0)) {
    try {
      fs.rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
    } catch {
      // A test made something read-only: make it writable, then remove.
      for (const f of [dir, ...fs.readdirSync(dir, { recursive: true }).map((f) => path.join(dir, String(f)))]) {
        try { fs.chmodSync(f, 0o700); } catch { /* gone already */ }
      }
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }
}
