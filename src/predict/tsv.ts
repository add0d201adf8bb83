import * as fs from 'node:fs';
import { ModtuneError } from '../errors.js';

export interface TextRow {
  text: string;
  textPair?: string;
}

/**
 * Inputs from a TSV file: one text per line, or two tab-separated texts (a pair). Blank lines are
 * skipped; `header` skips the first line.
 */
export function readTextsTsv(file: string, opts: { header?: boolean } = {}): TextRow[] {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new ModtuneError(`${file}: cannot read input file (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  const lines = text.replace(/^\uFEFF/, '').split('\n');
  const rows: TextRow[] = [];
  lines.forEach((raw, i) => {
    if (i === 0 && opts.header) return;
    const line = raw.replace(/\r$/, '');
    if (line.trim() === '') return;
    const cols = line.split('\t');
    if (cols.length > 2) throw new ModtuneError(`${file}:${i + 1}: ${cols.length} tab-separated columns; expected one text or two (a pair)`);
    rows.push(cols.length === 2 ? { text: cols[0]!, textPair: cols[1]! } : { text: cols[0]! });
  });
  if (rows.length === 0) throw new ModtuneError(`${file}: no input lines`);
  return rows;
}
