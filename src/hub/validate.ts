/**
 * Checks a downloaded file must pass before it enters the cache: a body cut short without a declared
 * length (or a server that answers with an error page) must not be cached as the file.
 */
import * as fs from 'node:fs';
import { headerLength, parseHeader } from '../bert/safetensors-format.js';
import { readRange } from '../util/read-range.js';

function checkJson(file: string): void {
  JSON.parse(fs.readFileSync(file, 'utf8'));
}

/** The header parses and the tensors it lists end exactly where the file does. */
function checkSafetensors(file: string): void {
  const size = fs.statSync(file).size;
  const n = headerLength(readRange(file, 0, Math.min(8, size)), size, file);
  const dataLength = size - 8 - n;
  const { entries } = parseHeader(readRange(file, 8, n), dataLength, file);
  const end = entries.reduce((m, e) => Math.max(m, e.end), 0);
  if (end !== dataLength) throw new Error(`the tensors end at byte ${end} of a ${dataLength}-byte data section`);
}

/** A vocabulary: non-empty UTF-8 text. */
function checkText(file: string): void {
  const bytes = fs.readFileSync(file);
  if (bytes.length === 0) throw new Error('empty');
  new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  if (bytes.includes(0)) throw new Error('binary data (NUL bytes) in a text file');
}

/** The check for a repo file, by its name. */
export function validatorFor(name: string): ((file: string) => void) | undefined {
  if (name.endsWith('.json')) return checkJson;
  if (name.endsWith('.safetensors')) return checkSafetensors;
  if (name.endsWith('.txt')) return checkText;
  return undefined;
}
