import * as fs from 'node:fs';
import * as path from 'node:path';
import { ModtuneError } from '../errors.js';
import { downloadFile, type DownloadProgress } from './download.js';
import { getGlueTask, type GlueTask } from './glue-tasks.js';
import { modtuneCacheDir } from './paths.js';
import { extractZip, ZipReader } from './zip.js';

/** Where the GLUE download script takes the archives from. */
export const GLUE_DATA_URL = 'https://dl.fbaipublicfiles.com/glue/data';
/** MRPC is not hosted by GLUE: the script takes SentEval's copy of the Microsoft files plus GLUE's dev ids. */
export const MRPC_SOURCE_URL = 'https://dl.fbaipublicfiles.com/senteval/senteval_data';
const MRPC_FILES = { train: 'msr_paraphrase_train.txt', test: 'msr_paraphrase_test.txt', devIds: 'mrpc_dev_ids.tsv' };

export interface PullOptions {
  /** Cache root; default `$MODTUNE_CACHE` or `~/.cache/modtune`. Data lands in `<cache>/glue/<Task>/`. */
  cacheDir?: string;
  /** Serve every file from `<baseUrl>/<file name>` instead (default `$MODTUNE_GLUE_URL`, else the official hosts). */
  baseUrl?: string;
  /** Download again even if the task's files are all there. */
  force?: boolean;
  onFile?: (file: string, url: string) => void;
  onProgress?: (p: DownloadProgress & { file: string }) => void;
  /** Size cap per downloaded file (default MAX_GLUE_DOWNLOAD_BYTES). */
  maxBytes?: number;
}

export interface PullResult {
  task: GlueTask;
  /** The GLUE root in the cache (pass as `--data`), and the task's folder in it. */
  root: string;
  taskDir: string;
  alreadyPresent: boolean;
}

function splitFiles(task: GlueTask): string[] {
  return [...new Set(Object.values(task.splits).map((s) => s.file))];
}

function isComplete(task: GlueTask, dir: string): boolean {
  return splitFiles(task).every((f) => fs.existsSync(path.join(dir, f)));
}

/**
 * Fetch one GLUE task into the cache, as the official download script lays it out. Downloads
 * resume after an interruption; the task folder only appears (or is replaced) once complete.
 */
export async function pullGlueTask(taskName: string | GlueTask, opts: PullOptions = {}): Promise<PullResult> {
  const task = getGlueTask(taskName);
  const root = path.join(modtuneCacheDir(opts.cacheDir), 'glue');
  const taskDir = path.join(root, task.folder);
  if (!opts.force && isComplete(task, taskDir)) return { task, root, taskDir, alreadyPresent: true };
  const downloads = path.join(root, '.downloads');
  const staging = path.join(root, `.staging-${task.folder}-${process.pid}`);
  const base = (opts.baseUrl ?? process.env.MODTUNE_GLUE_URL)?.replace(/\/+$/, '');
  const urlOf = (file: string, officialBase: string) => `${base ?? officialBase}/${encodeURIComponent(file)}`;
  const fetchOne = async (file: string, officialBase: string) => {
    const url = urlOf(file, officialBase);
    const dest = path.join(downloads, file);
    if (!fs.existsSync(dest)) {
      opts.onFile?.(file, url);
      await downloadFile(url, dest, {
        onProgress: (p) => opts.onProgress?.({ ...p, file }),
        maxBytes: opts.maxBytes,
        // An archive cut short (e.g. of undeclared length) has no central directory: never kept.
        validate: file.endsWith('.zip') ? (f) => ZipReader.open(f).close() : undefined,
      });
    }
    return dest;
  };

  // Downloads first (each resumable on its own), then the build from complete files.
  const fetched = task.download.kind === 'zip'
    ? [await fetchOne(task.download.file, GLUE_DATA_URL)]
    : [await fetchOne(MRPC_FILES.train, MRPC_SOURCE_URL), await fetchOne(MRPC_FILES.test, MRPC_SOURCE_URL), await fetchOne(MRPC_FILES.devIds, GLUE_DATA_URL)];
  fs.rmSync(staging, { recursive: true, force: true });
  fs.mkdirSync(staging, { recursive: true });
  try {
    let built: string;
    try {
      if (task.download.kind === 'zip') {
        extractZip(fetched[0]!, staging, { skip: (name) => name.startsWith('__MACOSX/') });
        built = findTaskFolder(task, staging, task.download.file);
      } else {
        built = path.join(staging, task.folder);
        buildMrpc(fetched[0]!, fetched[1]!, fetched[2]!, built);
      }
    } catch (e) {
      // A bad download is not kept: the next run fetches it afresh.
      for (const f of fetched) fs.rmSync(f, { force: true });
      throw e;
    }
    // Swap the finished folder in: the task folder is never a half-extracted one.
    fs.mkdirSync(root, { recursive: true });
    const old = path.join(root, `.old-${task.folder}-${process.pid}`);
    if (fs.existsSync(taskDir)) fs.renameSync(taskDir, old);
    fs.renameSync(built, taskDir);
    fs.rmSync(old, { recursive: true, force: true });
  } finally {
    fs.rmSync(staging, { recursive: true, force: true });
  }
  for (const f of fetched) fs.rmSync(f, { force: true });
  return { task, root, taskDir, alreadyPresent: false };
}

/** The folder of the extracted archive that holds the task's files (`<Task>/` in the official zips). */
function findTaskFolder(task: GlueTask, staging: string, archive: string): string {
  const candidates = [path.join(staging, task.folder), staging];
  for (const entry of fs.readdirSync(staging, { withFileTypes: true })) {
    if (entry.isDirectory()) candidates.push(path.join(staging, entry.name));
  }
  const found = candidates.find((dir) => isComplete(task, dir));
  if (found) {
    if (found !== staging) return found;
    // Files at the archive's top level: move them into a folder of their own.
    const dir = path.join(staging, `.${task.folder}`);
    fs.mkdirSync(dir);
    for (const f of fs.readdirSync(staging)) if (f !== path.basename(dir)) fs.renameSync(path.join(staging, f), path.join(dir, f));
    return dir;
  }
  const listing = fs.readdirSync(staging).slice(0, 10).join(', ');
  throw new ModtuneError(`${archive}: expected ${splitFiles(task).join(', ')} in a ${task.folder}/ folder; the archive holds ${listing || 'nothing'}`);
}

/** Python's `str.strip()` whitespace, which the GLUE script used on every MRPC row. */
const PY_SPACE = '[ \\t\\n\\r\\v\\f\\x1c-\\x1f\\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]';
const pyStrip = (s: string) => s.replace(new RegExp(`^${PY_SPACE}+|${PY_SPACE}+$`, 'gu'), '');
/** Lines as Python's text mode reads them (universal newlines), without their ends. */
const pyLines = (text: string) => {
  const lines = text.split(/\r\n|\r|\n/);
  if (lines[lines.length - 1] === '') lines.pop();
  return lines;
};

/**
 * Build MRPC's train/dev/test.tsv from the Microsoft files the way the GLUE download script does:
 * the train file's header (byte-order mark included) heads train and dev; rows whose id pair is in
 * the dev id list go to dev; the test file loses its labels and gains an index column.
 */
export function buildMrpc(trainFile: string, testFile: string, devIdsFile: string, outDir: string): void {
  const devIds = new Set(pyLines(fs.readFileSync(devIdsFile, 'utf8')).map(pyStrip));
  const fields = (row: string, file: string, lineNo: number) => {
    const cells = pyStrip(row).split('\t');
    if (cells.length !== 5) throw new ModtuneError(`${file}:${lineNo}: expected 5 tab-separated columns (label, id 1, id 2, string 1, string 2), found ${cells.length}`);
    return cells;
  };
  const trainLines = pyLines(fs.readFileSync(trainFile, 'utf8'));
  if (trainLines.length === 0) throw new ModtuneError(`${trainFile}: empty, expected the MRPC training file`);
  const header = `${trainLines[0]}\n`;
  const train = [header];
  const dev = [header];
  trainLines.slice(1).forEach((row, i) => {
    const [label, id1, id2, s1, s2] = fields(row, trainFile, i + 2);
    (devIds.has(`${id1}\t${id2}`) ? dev : train).push(`${label}\t${id1}\t${id2}\t${s1}\t${s2}\n`);
  });
  const test = ['index\t#1 ID\t#2 ID\t#1 String\t#2 String\n'];
  pyLines(fs.readFileSync(testFile, 'utf8')).slice(1).forEach((row, i) => {
    const [, id1, id2, s1, s2] = fields(row, testFile, i + 2);
    test.push(`${i}\t${id1}\t${id2}\t${s1}\t${s2}\n`);
  });
  fs.mkdirSync(outDir, { recursive: true });
  fs.writeFileSync(path.join(outDir, 'train.tsv'), train.join(''));
  fs.writeFileSync(path.join(outDir, 'dev.tsv'), dev.join(''));
  fs.writeFileSync(path.join(outDir, 'test.tsv'), test.join(''));
  fs.copyFileSync(devIdsFile, path.join(outDir, 'dev_ids.tsv'));
  fs.copyFileSync(trainFile, path.join(outDir, MRPC_FILES.train));
  fs.copyFileSync(testFile, path.join(outDir, MRPC_FILES.test));
}
