import * as fs from 'node:fs';
import * as path from 'node:path';
import { ModtuneError } from '../errors.js';
import { getGlueSplit, getGlueTask, type GlueTask } from './glue-tasks.js';
import { parseGlueSplit, type GlueSplitData } from './glue-parse.js';

export { parseGlueSplit, type GlueExample, type GlueSplitData } from './glue-parse.js';

/**
 * The path of a split's file under `dir`, which may be the GLUE root (holding `<Task>/`) or the
 * task folder itself.
 */
export function glueSplitPath(taskName: string | GlueTask, split: string, dir: string): string {
  const task = getGlueTask(taskName);
  const { layout } = getGlueSplit(task, split);
  const inRoot = path.join(dir, task.folder, layout.file);
  if (fs.existsSync(inRoot)) return inRoot;
  const inTaskDir = path.join(dir, layout.file);
  if (path.basename(path.resolve(dir)) === task.folder && fs.existsSync(inTaskDir)) return inTaskDir;
  return inRoot;
}

/** Read one split of a GLUE task from its official TSV (no CSV quoting: sentences contain `"`). */
export function readGlueSplit(taskName: string | GlueTask, split: string, dir: string): GlueSplitData {
  const task = getGlueTask(taskName);
  const { name } = getGlueSplit(task, split);
  const file = glueSplitPath(task, name, dir);
  if (!fs.existsSync(file)) {
    throw new ModtuneError(`${task.name} ${name}: ${file} not found; run \`modtune data pull ${task.name}\` or pass --data DIR (the folder holding ${task.folder}/)`);
  }
  return parseGlueSplit(task, name, fs.readFileSync(file, 'utf8'), file);
}

