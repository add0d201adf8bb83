import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ModtuneError } from '../errors.js';
import { getGlueTask, type GlueTask } from './glue-tasks.js';

/** The user cache: `$MODTUNE_CACHE`, else `~/.cache/modtune`. */
export function modtuneCacheDir(override?: string): string {
  if (override) return path.resolve(override);
  const env = process.env.MODTUNE_CACHE;
  if (env) return path.resolve(env);
  return path.join(os.homedir(), '.cache', 'modtune');
}

/** The folder of this package (the one holding its package.json), found from this file's location. */
export function packageRoot(): string | undefined {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const manifest = path.join(dir, 'package.json');
    if (fs.existsSync(manifest)) {
      try {
        if ((JSON.parse(fs.readFileSync(manifest, 'utf8')) as { name?: string }).name === 'modtune') return dir;
      } catch { /* not ours: keep walking up */ }
    }
    const parent = path.dirname(dir);
    if (parent === dir) return undefined;
    dir = parent;
  }
}

function hasTask(root: string, task: GlueTask): boolean {
  try {
    return fs.statSync(path.join(root, task.folder)).isDirectory();
  } catch {
    return false;
  }
}

/** The folders searched for GLUE data, in order, with where each came from. */
export function glueDirCandidates(opts: { data?: string; cache?: string } = {}): Array<{ dir: string; source: string }> {
  const out: Array<{ dir: string; source: string }> = [];
  if (opts.data) return [{ dir: path.resolve(opts.data), source: '--data' }];
  if (process.env.MODTUNE_GLUE_DIR) out.push({ dir: path.resolve(process.env.MODTUNE_GLUE_DIR), source: 'MODTUNE_GLUE_DIR' });
  out.push({ dir: path.resolve('data/glue'), source: './data/glue' });
  out.push({ dir: path.join(modtuneCacheDir(opts.cache), 'glue'), source: 'the download cache' });
  out.push({ dir: path.resolve('../shared/glue'), source: '../shared/glue' });
  const pkg = packageRoot();
  if (pkg) out.push({ dir: path.resolve(pkg, '../shared/glue'), source: "../shared/glue beside the package" });
  const seen = new Set<string>();
  return out.filter((c) => (seen.has(c.dir) ? false : (seen.add(c.dir), true)));
}

/**
 * The GLUE root folder (the one holding `<Task>/`) for a task: `--data DIR`, else `$MODTUNE_GLUE_DIR`,
 * else `./data/glue`, else the `modtune data pull` cache, else `../shared/glue` from the current
 * folder or from the package root. `--data` may also name the task folder itself.
 */
export function resolveGlueDir(taskName: string | GlueTask, opts: { data?: string; cache?: string } = {}): string {
  const task = getGlueTask(taskName);
  const candidates = glueDirCandidates(opts);
  for (const { dir } of candidates) {
    if (hasTask(dir, task)) return dir;
    if (opts.data && path.basename(dir) === task.folder && fs.existsSync(dir)) return dir;
  }
  const looked = candidates.map((c) => path.join(c.dir, task.folder)).join(', ');
  throw new ModtuneError(`GLUE ${task.name} data not found (looked in ${looked}); run \`modtune data pull ${task.name}\` or pass --data DIR (the folder holding ${task.folder}/)`);
}

/** The uncased BERT WordPiece vocabulary modtune carries (Apache-2.0, models/vocab/README.md). */
export function bundledUncasedVocab(): string {
  const root = packageRoot();
  const file = root ? path.join(root, 'models', 'vocab', 'bert-base-uncased.txt') : undefined;
  if (!file || !fs.existsSync(file)) throw new ModtuneError('the uncased BERT vocabulary models/vocab/bert-base-uncased.txt is missing from the installation');
  return file;
}

/** `<folder>/<model stem>.<name>`: how a file that belongs to one model is named beside it. */
export function besideModel(modelFile: string, name: string): string {
  const resolved = path.resolve(modelFile);
  return path.join(path.dirname(resolved), `${path.basename(resolved).replace(/\.onnx$/, '')}.${name}`);
}

/**
 * The tokenizer that travels with a model: `<stem>.tokenizer.json` or `<stem>.vocab.txt` (what
 * build, pull --out and merge write), else a folder-wide `tokenizer.json` or `vocab.txt` (a Hub
 * download's layout).
 */
export function tokenizerBeside(modelFile: string): string | undefined {
  const dir = path.dirname(path.resolve(modelFile));
  const candidates = [besideModel(modelFile, 'tokenizer.json'), besideModel(modelFile, 'vocab.txt'), path.join(dir, 'tokenizer.json'), path.join(dir, 'vocab.txt')];
  return candidates.find((f) => fs.existsSync(f) && fs.statSync(f).isFile());
}

/** Copy a tokenizer beside a model as `<stem>.tokenizer.json` / `<stem>.vocab.txt`; returns the copy. */
export function copyTokenizerBeside(tokenizer: string, modelFile: string): string {
  const dest = besideModel(modelFile, tokenizer.endsWith('.json') ? 'tokenizer.json' : 'vocab.txt');
  if (path.resolve(tokenizer) !== dest) fs.writeFileSync(dest, fs.readFileSync(tokenizer));
  return dest;
}
