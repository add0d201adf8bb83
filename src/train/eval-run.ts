/**
 * `evaluateRun`: score a run folder's checkpoint (best, last or step N) or an artifacts folder's
 * initial parameters on a task's dev split(s), or write GLUE submission files for its test split(s).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ModtuneError } from '../errors.js';
import { readSafetensors } from '../bert/safetensors.js';
import { readManifest } from '../artifacts/generate.js';
import type { Manifest } from '../artifacts/manifest.js';
import { getGlueSplit, getGlueTask, type GlueTask } from '../data/glue-tasks.js';
import { resolveGlueDir } from '../data/paths.js';
import { formatSubmission } from '../data/submission.js';
import { loadTokenizer } from '../data/tokenizer.js';
import { checkVocabulary } from './prepare.js';
import { writeAtomic } from '../onnx/io.js';
import { getBackend, readInitialParameters, type Device, type TensorMap } from './backends/index.js';
import { checkpointsDir, latestCheckpointStep, listCheckpoints, stepDirName } from './checkpoint.js';
import { datasetSha256, loadTaskSplit } from './data.js';
import type { EncodedDataset } from '../data/encoded.js';
import { flattenScores, predict, scoreSplit, type SplitScore } from './evaluate.js';
import { DEFAULTS, type RunConfig } from './options.js';
import { checkHeadFitsTask } from './prepare.js';
import { isRunFolder, readConfig, runArtifactsDir, runFiles } from './run-folder.js';
import { jsonHas } from '../util/output-guard.js';
import { readRange } from '../util/read-range.js';

export interface EvaluateRunOptions {
  /** A run folder (config.json) or an artifacts folder (manifest.json). */
  dir: string;
  split?: 'dev' | 'test';
  /** Run folders: `best` (default when best/ exists), `last`, or a step number. */
  checkpoint?: string | number;
  data?: string;
  limitEval?: number;
  /** dev: a JSON file for the metrics; test: the submission file, or a folder for several. */
  out?: string;
  /** Artifacts folders without a task name in their manifest need one. */
  task?: string;
  tokenizer?: string;
  batchSize?: number;
  maxLength?: number;
  device?: Device;
  threads?: number;
  cacheDir?: string | false;
  log?: (line: string) => void;
}

export interface EvaluateRunResult {
  task: string;
  split: 'dev' | 'test';
  /** What was evaluated: a run's checkpoint or an artifacts folder's initial values. */
  source: { kind: 'run' | 'artifacts'; dir: string; checkpoint: string; step: number | null; params: string };
  /** dev: per-split scores and the flattened metrics. */
  scores?: SplitScore[];
  metrics?: Record<string, number>;
  /** test: the submission files written. */
  files?: Array<{ split: string; file: string; rows: number }>;
}

export async function evaluateRun(o: EvaluateRunOptions): Promise<EvaluateRunResult> {
  const dir = path.resolve(o.dir);
  const split = o.split ?? 'dev';
  if (split !== 'dev' && split !== 'test') throw new ModtuneError(`--split must be dev or test, got '${split}'`);
  if (o.limitEval !== undefined && !(Number.isSafeInteger(o.limitEval) && o.limitEval >= 1)) throw new ModtuneError(`--limit-eval must be a positive integer, got ${o.limitEval}`);
  if (o.batchSize !== undefined && !(Number.isSafeInteger(o.batchSize) && o.batchSize >= 1)) throw new ModtuneError(`--batch-size must be a positive integer, got ${o.batchSize}`);

  let cfg: RunConfig | null = null;
  let artifactsDir: string;
  let manifest: Manifest;
  let source: EvaluateRunResult['source'];
  let parameters: TensorMap;
  if (isRunFolder(dir)) {
    cfg = readConfig(dir);
    artifactsDir = runArtifactsDir(dir, cfg);
    manifest = readManifest(artifactsDir);
    const picked = pickCheckpoint(dir, o.checkpoint);
    parameters = new Map([...readSafetensors(picked.file).tensors].map(([k, t]) => [k, t.data]));
    source = { kind: 'run', dir, checkpoint: picked.label, step: picked.step, params: picked.file };
    if (o.task && getGlueTask(o.task).name !== cfg.task) throw new ModtuneError(`--task ${o.task}: the run in ${o.dir} trained ${cfg.task}`);
  } else if (fs.existsSync(path.join(dir, 'manifest.json'))) {
    if (o.checkpoint !== undefined) throw new ModtuneError(`--checkpoint applies to run folders; ${o.dir} is an artifacts folder (its initial parameters are evaluated)`);
    artifactsDir = dir;
    manifest = readManifest(dir);
    parameters = readInitialParameters(dir, manifest);
    source = { kind: 'artifacts', dir, checkpoint: 'initial', step: null, params: path.join(dir, manifest.initialValues) };
  } else {
    throw new ModtuneError(`${o.dir}: neither a run folder (config.json) nor an artifacts folder (manifest.json)`);
  }

  const taskName = cfg?.task ?? o.task ?? manifest.task.name;
  if (!taskName) throw new ModtuneError(`the artifacts in ${o.dir} name no task; pass --task NAME`);
  const task: GlueTask = getGlueTask(taskName);
  checkHeadFitsTask(manifest, task, artifactsDir);

  let tokenizerFile = o.tokenizer ?? cfg?.tokenizer;
  if (!tokenizerFile || !fs.existsSync(tokenizerFile)) {
    if (!o.tokenizer && manifest.tokenizer.file) tokenizerFile = path.join(artifactsDir, manifest.tokenizer.file);
  }
  if (!tokenizerFile) throw new ModtuneError(`the artifacts in ${artifactsDir} name no tokenizer; pass --tokenizer PATH (tokenizer.json or vocab.txt)`);
  const tokenizer = checkVocabulary(loadTokenizer(tokenizerFile), tokenizerFile, manifest);
  const maxLength = o.maxLength ?? cfg?.maxLength ?? manifest.tokenizer.maxLength ?? DEFAULTS.maxLength;
  const dataDir = o.data ? resolveGlueDir(task, { data: o.data }) : cfg && fs.existsSync(cfg.data) ? cfg.data : resolveGlueDir(task, {});
  const batchSize = o.batchSize ?? cfg?.batchSize ?? DEFAULTS.batchSize;

  // What --out would replace is checked before any work: only a file this command wrote.
  const outDir = split === 'test' ? submissionFolder(o.out, task, cfg ? path.join(dir, 'submission') : path.resolve('submission')) : undefined;
  const submissionFile = (s: string) => outDir!.file ?? path.join(outDir!.dir, task.submission.files[getGlueSplit(task, s).name]!);
  if (split === 'dev' && o.out) checkReplaceable(path.resolve(o.out), METRICS_FILE);
  for (const s of split === 'test' ? task.testSplits : []) checkReplaceable(submissionFile(s), SUBMISSION_FILE);

  const backend = await getBackend(cfg?.backend ?? DEFAULTS.backend).create({
    artifactsDir, manifest, device: o.device ?? DEFAULTS.device, threads: o.threads, parameters, batchSize,
  });
  try {
    const load = (s: string) => loadTaskSplit(task, s, { dir: dataDir, tokenizer, maxLength, limit: o.limitEval, cacheDir: o.cacheDir });
    if (split === 'dev') {
      const scores: SplitScore[] = [];
      for (const s of task.devSplits) {
        const ds = load(s);
        const note = cfg ? devSubsetNote(cfg, s, ds, dataDir, maxLength) : null;
        if (note) o.log?.(note);
        scores.push(await scoreSplit(backend, task, s, ds, { batchSize }));
      }
      const metrics = flattenScores(scores);
      if (o.out) writeAtomic(path.resolve(o.out), `${JSON.stringify({ task: task.name, split, source, metrics, splits: scores }, null, 2)}\n`);
      return { task: task.name, split, source, scores, metrics };
    }
    const files: NonNullable<EvaluateRunResult['files']> = [];
    for (const s of task.testSplits) {
      const ds = load(s);
      const p = await predict(backend, ds, { batchSize, regression: task.regression });
      const { text } = formatSubmission(task, s, ds.ids, p.predictions);
      const file = submissionFile(s);
      fs.mkdirSync(path.dirname(file), { recursive: true });
      writeAtomic(file, text);
      files.push({ split: s, file, rows: ds.size });
    }
    return { task: task.name, split, source, files };
  } finally {
    await backend.release();
  }
}

/**
 * A note when the dev examples scored are not the ones the run evaluated on during training (another
 * --limit-eval, data folder or --max-length): the metrics are then not comparable with the run's.
 */
export function devSubsetNote(cfg: RunConfig, split: string, ds: EncodedDataset, dataDir: string, maxLength: number): string | null {
  const trained = cfg.totals.evalExamples[split];
  const notComparable = "these metrics are not comparable with the run's";
  if (trained !== undefined && trained !== ds.size) {
    const limit = cfg.limitEval ? ` (--limit-eval ${cfg.limitEval})` : ' (all of it)';
    return `note: scoring ${ds.size} ${split} examples, but the run evaluated on ${trained}${limit}; ${notComparable}`;
  }
  const hash = cfg.dataSha256?.dev[split];
  if (hash && hash !== datasetSha256(ds)) {
    return `note: the ${split} examples scored (${dataDir}, max length ${maxLength}) differ from those the run evaluated on, though as many; ${notComparable}`;
  }
  return null;
}

/** A kind of file `eval` writes, and how to tell one it wrote from its first `readBytes`. */
interface OutputKind { what: string; readBytes: number; whole: boolean; recognise: (head: string) => boolean }

const METRICS_FILE: OutputKind = {
  what: "a metrics file written by 'modtune eval'",
  // A few KiB; a larger file is not one (and is not read whole to find out).
  readBytes: 4 << 20,
  whole: true,
  recognise: (text) => jsonHas(text, { task: 'string', split: 'string', source: 'object', metrics: 'object' }),
};
const SUBMISSION_FILE: OutputKind = {
  what: "a GLUE submission file written by 'modtune eval'",
  readBytes: 64,
  whole: false,
  recognise: (text) => text.startsWith('index\tprediction\n'),
};

/**
 * `file` may be written: it does not exist, or it is a regular file of `kind` (an earlier eval's
 * output, which a new eval replaces). Anything else — a user's file, a run's own config or
 * checkpoint — is refused before the evaluation starts.
 */
function checkReplaceable(file: string, kind: OutputKind): void {
  let st: fs.Stats;
  try {
    st = fs.statSync(file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw new ModtuneError(`--out ${file}: cannot read it (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  if (!st.isFile()) throw new ModtuneError(`--out ${file} exists and is not a regular file; expected a new file path or ${kind.what}`);
  const recognised = (!kind.whole || st.size <= kind.readBytes) && kind.recognise(readRange(file, 0, kind.readBytes).toString('utf8'));
  if (!recognised) throw new ModtuneError(`--out ${file} exists and is not ${kind.what}; eval replaces only its own output, choose another --out`);
}

/** Where submission files go: `--out FILE` for a task with one test split, else a folder. */
function submissionFolder(out: string | undefined, task: GlueTask, fallback: string): { dir: string; file?: string } {
  if (!out) return { dir: fallback };
  const abs = path.resolve(out);
  const isDir = (fs.existsSync(abs) && fs.statSync(abs).isDirectory()) || out.endsWith('/') || out.endsWith(path.sep);
  if (isDir) return { dir: abs };
  if (task.testSplits.length > 1) {
    throw new ModtuneError(`--out ${out}: ${task.name} has ${task.testSplits.length} test splits (${task.testSplits.join(', ')}); give a folder (ending in /) for their submission files`);
  }
  return { dir: path.dirname(abs), file: abs };
}

/** The parameters file of a run's checkpoint choice. */
function pickCheckpoint(dir: string, choice: string | number | undefined): { file: string; label: string; step: number | null } {
  const files = runFiles(dir);
  const bestFile = path.join(files.best, 'params.safetensors');
  const stepFile = (n: number) => path.join(checkpointsDir(dir), stepDirName(n), 'params.safetensors');
  const bestStep = () => {
    try {
      return (JSON.parse(fs.readFileSync(path.join(files.best, 'metrics.json'), 'utf8')) as { step: number }).step;
    } catch {
      return null;
    }
  };
  if (choice === undefined || choice === 'best') {
    if (fs.existsSync(bestFile)) return { file: bestFile, label: 'best', step: bestStep() };
    if (choice === 'best') throw new ModtuneError(`${dir}: no best/ checkpoint (no evaluation has improved yet); use --checkpoint last`);
    choice = 'last';
  }
  if (choice === 'last') {
    const step = latestCheckpointStep(dir);
    if (step === null) throw new ModtuneError(`${dir}: no checkpoints yet`);
    return { file: stepFile(step), label: 'last', step };
  }
  const n = typeof choice === 'number' ? choice : /^\d+$/.test(choice) ? Number(choice) : NaN;
  if (!Number.isSafeInteger(n)) throw new ModtuneError(`--checkpoint must be best, last or a step number, got '${choice}'`);
  if (!fs.existsSync(stepFile(n))) {
    const have = listCheckpoints(dir);
    throw new ModtuneError(`${dir}: no checkpoint at step ${n}; kept: ${have.length ? have.join(', ') : 'none'} (and best/)`);
  }
  return { file: stepFile(n), label: `step-${n}`, step: n };
}
