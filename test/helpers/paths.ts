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

export function tmpDir(prefix = 'modtune-test-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}
