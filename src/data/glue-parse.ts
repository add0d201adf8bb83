/** Parsing GLUE's TSV layouts from text, without Node I/O (files: ./glue-reader.ts); the browser page reads dropped TSVs with it. */
import { ModtuneError } from '../errors.js';
import { getGlueSplit, getGlueTask, type GlueSplitLayout, type GlueTask } from './glue-tasks.js';

export interface GlueExample {
  /** The row's `index`/`id` cell (kept verbatim for submission files), else the 0-based row number. */
  id: string;
  textA: string;
  textB?: string;
  /** Class index into `task.labels`, or the similarity score for STS-B; absent in test splits. */
  label?: number;
}

export interface GlueSplitData {
  examples: GlueExample[];
  /** Rows dropped as malformed (only QQP, whose official files have some, as the reference loaders do). */
  skipped: number;
}

/** Parse the text of a split's TSV; `file` names it in errors. */
export function parseGlueSplit(taskName: string | GlueTask, split: string, text: string, file: string): GlueSplitData {
  const task = getGlueTask(taskName);
  const { layout } = getGlueSplit(task, split);
  // MRPC's files begin with a byte-order mark; drop it wherever it appears first.
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  const lines = text.split('\n');
  if (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  // QQP's official files hold rows broken by stray newlines; the reference loaders drop those.
  const skipMalformed = task.name === 'QQP';
  const examples: GlueExample[] = [];
  let skipped = 0;
  let start = 0;
  if (layout.header) {
    if (lines.length === 0) throw new ModtuneError(`${file}: empty file, expected a header line`);
    checkHeader(stripCr(lines[0]!), layout, file);
    start = 1;
  }
  for (let i = start; i < lines.length; i++) {
    const lineNo = i + 1;
    const cells = stripCr(lines[i]!).split('\t');
    const problem = cells.length !== layout.columns
      ? `expected ${layout.columns} tab-separated columns, found ${cells.length}`
      : undefined;
    let example: GlueExample | string | undefined;
    if (!problem) example = rowToExample(task, layout, cells, examples.length + skipped);
    const error = problem ?? (typeof example === 'string' ? example : undefined);
    if (error !== undefined) {
      if (skipMalformed) { skipped++; continue; }
      throw new ModtuneError(`${file}:${lineNo}: ${error}`);
    }
    examples.push(example as GlueExample);
  }
  return { examples, skipped };
}

function stripCr(line: string): string {
  return line.endsWith('\r') ? line.slice(0, -1) : line;
}

function checkHeader(line: string, layout: GlueSplitLayout, file: string): void {
  const cells = line.split('\t');
  if (cells.length !== layout.columns) {
    throw new ModtuneError(`${file}:1: header has ${cells.length} tab-separated columns, expected ${layout.columns}`);
  }
  for (const [col, want] of Object.entries(layout.headerNames ?? {})) {
    const got = cells[Number(col)]!.trim();
    if (got !== want) throw new ModtuneError(`${file}:1: header column ${Number(col) + 1} is '${got}', expected '${want}'`);
  }
}

/** An example, or a string saying what is wrong with the row. */
function rowToExample(task: GlueTask, layout: GlueSplitLayout, cells: string[], rowNumber: number): GlueExample | string {
  const example: GlueExample = {
    id: layout.id === null ? String(rowNumber) : cells[layout.id]!.trim(),
    textA: cells[layout.textA]!,
  };
  if (layout.textB !== undefined) example.textB = cells[layout.textB]!;
  if (layout.label !== undefined) {
    const raw = cells[layout.label < 0 ? cells.length + layout.label : layout.label]!.trim();
    if (task.labels) {
      const index = task.labels.indexOf(raw);
      if (index < 0) return `label '${raw}' is not one of ${task.labels.join(', ')}`;
      example.label = index;
    } else {
      const score = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(raw) ? Number(raw) : NaN;
      if (!Number.isFinite(score) || score < 0 || score > 5) return `score '${raw}' is not a number in [0, 5]`;
      example.label = score;
    }
  }
  if (layout.id !== null && example.id === '') return 'empty id';
  return example;
}
