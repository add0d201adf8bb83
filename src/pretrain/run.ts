/**
 * `modtune pretrain`: masked-LM pre-training of a BERT on a text corpus, with the native backend.
 *
 * The output folder is a Hugging Face model folder (see model-folder.ts), refreshed at every
 * checkpoint, so a stopped or killed run still leaves a usable model; `training/` inside it holds
 * the run's state: `options.json`, the training graphs, `checkpoints/` and `metrics.jsonl`.
 * `--resume` continues from the latest checkpoint with the same updates, masks and data order as an
 * uninterrupted run.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ModtuneError } from '../errors.js';
import { presetConfig } from '../bert/presets.js';
import type { BertConfig } from '../bert/config.js';
import type { WeightMap } from '../bert/weights.js';
import { modtuneCacheDir } from '../data/paths.js';
import { loadTokenizer, type BertTokenizer } from '../data/tokenizer.js';
import type { Batch } from '../data/batching.js';
import { getBackend } from '../train/backends/index.js';
import type { TrainBackend } from '../train/backends/types.js';
import { CHECKPOINT_VERSION, readLatestCheckpoint, discardAfter, writeCheckpoint, type CheckpointState } from '../train/checkpoint.js';
import { learningRate } from '../train/schedule.js';
import { createProgress, formatDuration, type ProgressStream } from '../util/progress.js';
import { Rng } from '../util/random.js';
import { VERSION } from '../version.js';
import { acquireFolderLock, LOCK_FILE, type FolderLock } from '../util/folder-lock.js';
import { checkOutputFolder, clearFolder, jsonHas, type FolderKind, type GuardInput } from '../util/output-guard.js';
import { generateMlmArtifacts } from './artifacts.js';
import { maskBatch, maskingVocabulary, type MaskingOptions, type Vocabulary } from './masking.js';
import { readModelFolder, tokensSeen, writeModelFolder, MODEL_FILES, type PretrainRecord } from './model-folder.js';
import { loadOrBuildShard, type TokenShard } from './shard.js';
import { writePretrainCurves } from './plot.js';
import { heldOutBatches, scoreMasked } from './evaluate.js';

export interface PretrainOptions {
  corpus?: string[];
  out: string;
  /** Continue pre-training this model folder (config.json + model.safetensors); else a fresh model. */
  from?: string;
  /** Shape of a fresh model (default bert-mini). */
  preset?: string;
  /** vocab.txt / tokenizer.json; default: the one in `from`, else the uncased BERT vocabulary. */
  tokenizer?: string;
  train?: string;
  freezeHead?: boolean;
  seqLen?: number;
  batchSize?: number;
  gradAccum?: number;
  lr?: number;
  warmupRatio?: number;
  weightDecay?: number;
  maxGradNorm?: number;
  dropout?: number;
  maskRate?: number;
  wholeWord?: boolean;
  /** Budget: tokens seen (sequence length × sequences), or updates. */
  tokens?: number;
  steps?: number;
  evalEvery?: number;
  evalSequences?: number;
  saveEvery?: number;
  seed?: number;
  threads?: number;
  resume?: boolean;
  force?: boolean;
  /** Store the model folder's weights as float16 (half the size; checkpoints stay float32). */
  fp16?: boolean;
  cacheDir?: string;
  signal?: AbortSignal;
  log?: (line: string) => void;
  progress?: ProgressStream;
}

/** Every option that decides the result, resolved; stored in `training/options.json`. */
export interface ResolvedPretrain {
  version: 1;
  corpus: string[];
  corpusKey: string;
  from: string | null;
  preset: string | null;
  tokenizer: string;
  train: string;
  freezeHead: boolean;
  seqLen: number;
  batchSize: number;
  gradAccum: number;
  lr: number;
  warmupSteps: number;
  weightDecay: number;
  maxGradNorm: number;
  dropout: number | null;
  maskRate: number;
  wholeWord: boolean;
  totalSteps: number;
  evalEvery: number;
  evalSequences: number;
  saveEvery: number;
  seed: number;
  /** The model folder's weights stored as float16 (an output choice, kept so a resume keeps it). */
  fp16?: boolean;
}

export interface PretrainSummary {
  out: string;
  steps: number;
  totalSteps: number;
  tokens: number;
  complete: boolean;
  heldOut: PretrainRecord['heldOut'];
  tokensPerSec: number;
  wallSeconds: number;
}

export class PretrainInterrupted extends ModtuneError {
  constructor(readonly out: string, readonly step: number, readonly totalSteps: number) {
    super(`interrupted at step ${step} of ${totalSteps}; checkpoint saved and ${out} holds the model as of that step. Continue with: modtune pretrain --resume --out ${out}`);
    this.name = 'PretrainInterrupted';
  }
}

const DEFAULTS = { preset: 'bert-mini', train: 'full', seqLen: 128, batchSize: 32, gradAccum: 1, lr: 5e-4, warmupRatio: 0.06, weightDecay: 0.01, maxGradNorm: 1, maskRate: 0.15, evalEvery: 500, evalSequences: 256, saveEvery: 200, seed: 0 };
const OPTIONS_FILE = 'options.json';

/** A pre-training output folder, as --force may replace it: training/options.json written by modtune. */
export const PRETRAIN_FOLDER: FolderKind = {
  name: 'a pre-training run folder',
  marker: path.join('training', OPTIONS_FILE),
  recognise: (text) => jsonHas(text, { version: 'number', corpusKey: 'string', totalSteps: 'number' }),
  partialProof: LOCK_FILE,
  partialEntry: (n) => n === LOCK_FILE || n.startsWith(`${LOCK_FILE}.`) || n === 'training',
};
const trainingDir = (out: string) => path.join(out, 'training');

/** The uncased BERT vocabulary: the copy shipped with modtune, else the shared one beside the project. */
function defaultVocabulary(): string {
  const here = path.dirname(new URL(import.meta.url).pathname);
  for (const rel of ['../../models/vocab/bert-base-uncased.txt', '../../../models/vocab/bert-base-uncased.txt', '../../../shared/tokenizers/bert-base-uncased/vocab.txt', '../../../../shared/tokenizers/bert-base-uncased/vocab.txt']) {
    const p = path.resolve(here, rel);
    if (fs.existsSync(p)) return p;
  }
  throw new ModtuneError('no tokenizer: pass --tokenizer vocab.txt (or tokenizer.json)');
}

function checkRange(name: string, v: number, lo: number, hi: number, integer = false): number {
  if (!Number.isFinite(v) || v < lo || v > hi || (integer && !Number.isInteger(v))) {
    throw new ModtuneError(`--${name} must be ${integer ? 'an integer' : 'a number'} in [${lo}, ${hi}], got ${v}`);
  }
  return v;
}

/** Progress over the corpus bytes while it is tokenized (once; later runs read the cache). */
function corpusProgress(stream?: ProgressStream): (done: number, total: number, tokens: number) => void {
  let bar: ReturnType<typeof createProgress> | undefined;
  return (done, total, tokens) => {
    bar ??= createProgress({ total, label: 'tokenizing corpus', unit: 'bytes', stream });
    bar.update(done, { tokens: tokens.toLocaleString('en-US') });
    if (done >= total) bar.done();
  };
}

/** Run (or resume) a pre-training run; resolves when the budget is spent. */
export async function pretrain(o: PretrainOptions): Promise<PretrainSummary> {
  const out = path.resolve(o.out);
  const tdir = trainingDir(out);
  const inputs: GuardInput[] = [
    ...(o.corpus ?? []).map((c) => ({ path: c, what: 'the corpus' })),
    ...(o.from ? [{ path: o.from, what: 'the --from model' }] : []),
    ...(o.tokenizer ? [{ path: o.tokenizer, what: 'the tokenizer' }] : []),
  ];
  let lock: FolderLock;
  let created = false;
  if (o.resume) {
    const file = path.join(tdir, OPTIONS_FILE);
    if (!fs.existsSync(file)) throw new ModtuneError(`--resume: ${out} holds no pre-training run (no training/${OPTIONS_FILE})`);
    lock = acquireFolderLock(out, 'pretrain --resume');
  } else {
    const state = checkOutputFolder(out, PRETRAIN_FOLDER, { force: o.force, inputs, hint: 'continue it with --resume, or ' });
    created = state === 'absent';
    fs.mkdirSync(out, { recursive: true });
    lock = acquireFolderLock(out, 'pretrain');
    if (state === 'ours' || state === 'partial') clearFolder(out, [LOCK_FILE]);
  }
  try {
    return await runPretrain(o, out);
  } catch (e) {
    // A fresh run that failed before it started (bad corpus, bad options) leaves nothing behind.
    if (!o.resume && !fs.existsSync(path.join(tdir, OPTIONS_FILE))) {
      lock.release();
      if (created) fs.rmSync(out, { recursive: true, force: true });
    }
    throw e;
  } finally {
    lock.release();
  }
}

/** The run itself, with the folder locked and cleared as the options say. */
async function runPretrain(o: PretrainOptions, out: string): Promise<PretrainSummary> {
  const log = o.log ?? (() => {});
  const tdir = trainingDir(out);
  const cacheDir = modtuneCacheDir(o.cacheDir);
  let cfg: ResolvedPretrain;
  let tokenizer: BertTokenizer;
  let shard: TokenShard;
  if (o.resume) {
    cfg = JSON.parse(fs.readFileSync(path.join(tdir, OPTIONS_FILE), 'utf8')) as ResolvedPretrain;
    checkResumeOptions(cfg, o);
    // The weights' storage does not change the training: a resume keeps the run's choice unless told.
    cfg.fp16 = o.fp16 ?? cfg.fp16 ?? false;
    tokenizer = loadTokenizer(cfg.tokenizer);
    shard = await loadOrBuildShard({ corpus: o.corpus?.length ? o.corpus : cfg.corpus, tokenizer, cacheDir, log });
    if (shard.meta.key !== cfg.corpusKey) {
      throw new ModtuneError(`--resume: the corpus is not the one this run was trained on (its files' contents differ: cache key ${shard.meta.key.slice(0, 12)}, the run used ${cfg.corpusKey.slice(0, 12)})`);
    }
  } else {
    const tokFile = o.tokenizer ?? (o.from ? readModelFolder(o.from).tokenizer : null) ?? defaultVocabulary();
    tokenizer = loadTokenizer(tokFile);
    shard = await loadOrBuildShard({ corpus: o.corpus ?? [], tokenizer, cacheDir, log, onProgress: corpusProgress(o.progress) });
    cfg = resolveOptions(o, tokFile, shard);
    fs.mkdirSync(tdir, { recursive: true });
    fs.writeFileSync(path.join(tdir, OPTIONS_FILE), `${JSON.stringify(cfg, null, 2)}\n`);
  }

  const { config, weights: startWeights } = modelSource(cfg, tokenizer);
  const tokensBefore = cfg.from ? tokensSeen(cfg.from) : 0;
  const vocab = maskingVocabulary(tokenizer);
  const masking: MaskingOptions = { rate: cfg.maskRate, wholeWord: cfg.wholeWord };
  const content = cfg.seqLen - 2;
  const nBlocks = Math.floor(shard.train.length / content);
  if (nBlocks < cfg.batchSize) throw new ModtuneError(`corpus: ${shard.train.length} training tokens make ${nBlocks} sequences of ${cfg.seqLen}, fewer than one batch (${cfg.batchSize})`);
  const heldOut = heldOutBatches(shard, cfg, vocab, masking);
  if (heldOut.length === 0) log('note: the corpus has too little held-out text for an evaluation; held-out metrics are skipped');

  // The training graphs, rebuilt each start: a resumed run picks up engine improvements, same numbers.
  const art = generateMlmArtifacts({
    config, weights: startWeights, weightsLabel: cfg.from ?? undefined, train: cfg.train, freezeHead: cfg.freezeHead, seed: cfg.seed, dropout: cfg.dropout ?? undefined,
    lr: cfg.lr, weightDecay: cfg.weightDecay, maxGradNorm: cfg.maxGradNorm, warmupSteps: cfg.warmupSteps, totalSteps: cfg.totalSteps, out: path.join(tdir, 'artifacts'),
  });
  const shapes = new Map(art.manifest.parameters.map((p) => [p.name, p.shape]));

  let ck = o.resume ? readLatestCheckpoint(tdir) : null;
  if (o.resume) {
    discardAfter(tdir, ck?.state.step ?? null);
    truncateMetrics(tdir, ck?.state.step ?? 0);
    log(ck ? `resuming ${out} from step ${ck.state.step} of ${cfg.totalSteps}` : `resuming ${out} from the start (no checkpoint was written)`);
  }
  const backend: TrainBackend = await getBackend('native').create({
    artifactsDir: art.dir, manifest: art.manifest, device: 'cpu', threads: o.threads, batchSize: cfg.batchSize, gradAccum: cfg.gradAccum,
    step: ck?.state.step ?? 0, seed: cfg.seed, parameters: ck?.parameters, optimizer: ck?.optimizer,
  });

  const schedule = { kind: 'linear' as const, peak: cfg.lr, warmupSteps: cfg.warmupSteps, totalSteps: cfg.totalSteps };
  const tokensPerStep = cfg.batchSize * cfg.gradAccum * cfg.seqLen;
  let step = ck?.state.step ?? 0;
  let elapsed = ck?.state.progress.elapsedSec ?? 0;
  let trainSec = ck?.state.progress.trainSec ?? 0;
  const m = ck?.state.metrics;
  let lastEval: PretrainRecord['heldOut'] = m && 'loss' in m ? { loss: m.loss!, accuracy: m.accuracy!, sequences: m.sequences!, step: m.step! } : null;
  const sessionStart = performance.now();
  const elapsedNow = () => elapsed + (performance.now() - sessionStart) / 1000;
  const progress = createProgress({ total: cfg.totalSteps, label: 'pretrain', stream: o.progress });

  const snapshot = (complete: boolean) => {
    const trained = backend.getParameters();
    const weights: WeightMap = new Map([...art.weights].map(([k, t]) => [k, trained.has(k) ? { shape: t.shape, data: trained.get(k)! } : t]));
    writeModelFolder(out, {
      config, weights, vocabText: vocabText(cfg.tokenizer), lowercase: tokenizer.lowercase, fp16: cfg.fp16,
      record: {
        format: 'modtune-pretrain', modtuneVersion: VERSION, complete,
        corpus: { files: shard.meta.files.map((f) => ({ path: path.basename(f.path), sha256: f.sha256, tokens: f.tokens })), trainTokens: shard.meta.tokens.train, heldOutTokens: shard.meta.tokens.heldOut },
        tokens: step * tokensPerStep, tokensBefore, tokensTotal: tokensBefore + step * tokensPerStep, steps: step, totalSteps: cfg.totalSteps, wallSeconds: Math.round(elapsedNow()), trainSeconds: Math.round(trainSec),
        heldOut: lastEval, options: { ...cfg, corpus: cfg.corpus.map((c) => path.basename(c)), tokenizer: path.basename(cfg.tokenizer), from: cfg.from && path.basename(cfg.from) },
      },
    });
  };
  const checkpoint = () => {
    const state: CheckpointState = {
      version: CHECKPOINT_VERSION, step, epoch: (step * cfg.batchSize * cfg.gradAccum) / nBlocks,
      data: { epoch: 0, position: step, rng: [], size: nBlocks, batchSize: cfg.batchSize * cfg.gradAccum },
      rng: { data: [] }, best: null,
      metrics: lastEval ? { loss: lastEval.loss, accuracy: lastEval.accuracy, sequences: lastEval.sequences, step: lastEval.step } : null,
      progress: { lastEvalStep: lastEval?.step ?? 0, evalsSinceBest: 0, elapsedSec: elapsedNow(), trainSec, examples: step * cfg.batchSize * cfg.gradAccum },
    };
    writeCheckpoint(tdir, { state, parameters: backend.getParameters(), optimizer: backend.getOptimizerState() }, { keep: 2, shapes });
    snapshot(step >= cfg.totalSteps);
  };
  const evaluate = async () => {
    if (heldOut.length === 0) return;
    let lossSum = 0, correct = 0, count = 0;
    for (const b of heldOut) {
      const { logits } = await backend.evaluate(b);
      const labels = b.labels as BigInt64Array;
      const s = scoreMasked(logits, labels);
      lossSum += s.lossSum;
      correct += s.correct;
      count += labels.length;
    }
    lastEval = { loss: lossSum / count, accuracy: correct / count, sequences: heldOut.reduce((s, b) => s + b.batch, 0), step };
    appendMetric(tdir, { type: 'eval', step, tokens: step * tokensPerStep, loss: lastEval.loss, accuracy: lastEval.accuracy });
    log(`step ${step}: held-out MLM loss ${lastEval.loss.toFixed(4)}, masked-token accuracy ${(100 * lastEval.accuracy).toFixed(2)}%`);
  };

  try {
    if (step === 0) await evaluate();
    let window = { loss: 0, n: 0 };
    while (step < cfg.totalSteps) {
      const t0 = performance.now();
      const next = step + 1;
      let loss = 0;
      for (let micro = 0; micro < cfg.gradAccum; micro++) {
        const batch = trainBatch(shard, cfg, vocab, masking, next, micro, nBlocks);
        const r = micro < cfg.gradAccum - 1
          ? await backend.accumulate(batch)
          : await backend.trainStep(batch, { learningRate: learningRate(next, schedule), step: next, gradScale: 1 / cfg.gradAccum });
        if (!Number.isFinite(r.loss)) {
          throw new ModtuneError(`the loss became ${r.loss} at step ${next}; the run stopped and its last checkpoint (step ${readLatestCheckpoint(tdir)?.state.step ?? 'none'}) is intact. Lower --lr or keep --max-grad-norm, then --resume`);
        }
        loss += r.loss / cfg.gradAccum;
      }
      step = next;
      trainSec += (performance.now() - t0) / 1000;
      window.loss += loss;
      window.n++;
      progress.update(step, { loss: loss.toFixed(3), 'tok/s': Math.round((step - (ck?.state.step ?? 0)) * tokensPerStep / ((performance.now() - sessionStart) / 1000)) });
      if (step % 50 === 0 || step === cfg.totalSteps) {
        appendMetric(tdir, { type: 'train', step, tokens: step * tokensPerStep, loss: window.loss / window.n, lr: learningRate(step, schedule) });
        window = { loss: 0, n: 0 };
      }
      if (step % cfg.evalEvery === 0 || step === cfg.totalSteps) await evaluate();
      if (step % cfg.saveEvery === 0 || step === cfg.totalSteps) checkpoint();
      if (o.signal?.aborted && step < cfg.totalSteps) {
        if (step % cfg.saveEvery !== 0) checkpoint();
        progress.done('interrupted');
        throw new PretrainInterrupted(out, step, cfg.totalSteps);
      }
    }
    progress.done(`${cfg.totalSteps} steps`);
    await writePretrainCurves(out, `masked-LM pre-training, ${path.basename(out)}`);
  } finally {
    await backend.release();
  }
  const wall = elapsedNow();
  return { out, steps: step, totalSteps: cfg.totalSteps, tokens: step * tokensPerStep, complete: true, heldOut: lastEval, tokensPerSec: (step * tokensPerStep) / Math.max(trainSec, 1e-9), wallSeconds: wall };
}

function resolveOptions(o: PretrainOptions, tokFile: string, shard: TokenShard): ResolvedPretrain {
  const seqLen = checkRange('seq-len', o.seqLen ?? DEFAULTS.seqLen, 8, 4096, true);
  const batchSize = checkRange('batch-size', o.batchSize ?? DEFAULTS.batchSize, 1, 65536, true);
  const gradAccum = checkRange('grad-accum', o.gradAccum ?? DEFAULTS.gradAccum, 1, 65536, true);
  const tokensPerStep = seqLen * batchSize * gradAccum;
  if (o.tokens !== undefined && o.steps !== undefined) throw new ModtuneError('give the budget as --tokens or --steps, not both');
  const totalSteps = o.steps !== undefined ? checkRange('steps', o.steps, 1, 1e9, true)
    : Math.ceil(checkRange('tokens', o.tokens ?? 0, 1, 1e13) / tokensPerStep);
  if (o.tokens === undefined && o.steps === undefined) throw new ModtuneError('give a budget: --tokens N (e.g. 40000000) or --steps N');
  const warmupRatio = checkRange('warmup-ratio', o.warmupRatio ?? DEFAULTS.warmupRatio, 0, 1);
  const maskRate = checkRange('mask-rate', o.maskRate ?? DEFAULTS.maskRate, 0.01, 0.9);
  if (o.dropout !== undefined) checkRange('dropout', o.dropout, 0, 0.99);
  const evalEvery = checkRange('eval-every', o.evalEvery ?? DEFAULTS.evalEvery, 1, 1e9, true);
  return {
    version: 1,
    corpus: (o.corpus ?? []).map((c) => path.resolve(c)),
    corpusKey: shard.meta.key,
    from: o.from ? path.resolve(o.from) : null,
    preset: o.from ? null : o.preset ?? DEFAULTS.preset,
    tokenizer: path.resolve(tokFile),
    train: o.train ?? DEFAULTS.train,
    freezeHead: !!o.freezeHead,
    seqLen, batchSize, gradAccum,
    lr: checkRange('lr', o.lr ?? DEFAULTS.lr, 0, 1),
    warmupSteps: Math.round(warmupRatio * totalSteps),
    weightDecay: checkRange('weight-decay', o.weightDecay ?? DEFAULTS.weightDecay, 0, 1),
    maxGradNorm: checkRange('max-grad-norm', o.maxGradNorm ?? DEFAULTS.maxGradNorm, 0, 1e9),
    dropout: o.dropout ?? null,
    maskRate,
    wholeWord: !!o.wholeWord,
    totalSteps,
    evalEvery,
    evalSequences: checkRange('eval-sequences', o.evalSequences ?? DEFAULTS.evalSequences, 0, 1e6, true),
    saveEvery: checkRange('save-every', o.saveEvery ?? DEFAULTS.saveEvery, 1, 1e9, true),
    seed: checkRange('seed', o.seed ?? DEFAULTS.seed, 0, 2 ** 31, true),
    fp16: !!o.fp16,
  };
}

/** A resume continues the stored run: options given again must agree with it. */
function checkResumeOptions(cfg: ResolvedPretrain, o: PretrainOptions): void {
  const given: Array<[keyof ResolvedPretrain, unknown]> = [
    ['train', o.train], ['seqLen', o.seqLen], ['batchSize', o.batchSize], ['gradAccum', o.gradAccum], ['lr', o.lr], ['weightDecay', o.weightDecay],
    ['maxGradNorm', o.maxGradNorm], ['dropout', o.dropout], ['maskRate', o.maskRate], ['seed', o.seed], ['evalEvery', o.evalEvery], ['saveEvery', o.saveEvery],
  ];
  for (const [k, v] of given) {
    if (v !== undefined && v !== cfg[k]) throw new ModtuneError(`--resume: this run was started with ${k} ${String(cfg[k])}, not ${String(v)}; resume it as it was, or start a new run`);
  }
  if (o.steps !== undefined && o.steps !== cfg.totalSteps) throw new ModtuneError(`--resume: this run's budget is ${cfg.totalSteps} steps, not ${o.steps}`);
  if (o.from !== undefined && path.resolve(o.from) !== cfg.from) throw new ModtuneError(`--resume: this run started from ${cfg.from ?? 'a fresh model'}, not ${o.from}`);
}

function modelSource(cfg: ResolvedPretrain, tok: BertTokenizer): { config: BertConfig; weights?: WeightMap } {
  let config: BertConfig;
  let weights: WeightMap | undefined;
  if (cfg.from) {
    const m = readModelFolder(cfg.from);
    config = m.config;
    weights = m.weights;
  } else {
    config = presetConfig(cfg.preset ?? DEFAULTS.preset);
    config.vocabSize = tok.vocabSize;
  }
  if (config.modelType !== 'bert') throw new ModtuneError(`masked-LM pre-training is for BERT models; ${cfg.from} is '${config.modelType}'`);
  if (tok.vocabSize > config.vocabSize) throw new ModtuneError(`the tokenizer has ${tok.vocabSize} tokens but the model's vocabulary has ${config.vocabSize} rows`);
  if (cfg.seqLen > config.maxPositionEmbeddings) throw new ModtuneError(`--seq-len ${cfg.seqLen} exceeds the model's max_position_embeddings (${config.maxPositionEmbeddings})`);
  return { config, weights };
}

/** The sequences of one micro-batch: a fixed function of (seed, update, micro-batch). */
function trainBatch(shard: TokenShard, cfg: ResolvedPretrain, vocab: Vocabulary, masking: MaskingOptions, step: number, micro: number, nBlocks: number): Batch {
  const perUpdate = cfg.batchSize * cfg.gradAccum;
  const content = cfg.seqLen - 2;
  const first = (step - 1) * perUpdate + micro * cfg.batchSize;
  const blocks: Uint16Array[] | Uint32Array[] = [];
  for (let i = 0; i < cfg.batchSize; i++) {
    const k = first + i;
    const epoch = Math.floor(k / nBlocks);
    const b = epochOrder(cfg.seed, epoch, nBlocks)[k % nBlocks]!;
    (blocks as Array<Uint16Array | Uint32Array>).push(shard.train.subarray(b * content, (b + 1) * content));
  }
  return maskBatch(blocks, vocab, masking, new Rng(cfg.seed * 1_000_003 + step * 4099 + micro));
}

/** The shuffled order of the sequences in an epoch (cached: computing it is 0.1 s for 500k sequences). */
const orderCache = new Map<string, Uint32Array>();
function epochOrder(seed: number, epoch: number, n: number): Uint32Array {
  const key = `${seed}/${epoch}/${n}`;
  let order = orderCache.get(key);
  if (!order) {
    const rng = new Rng(seed * 7919 + epoch);
    order = new Uint32Array(n);
    for (let i = 0; i < n; i++) order[i] = i;
    for (let i = n - 1; i > 0; i--) {
      const j = Math.floor(rng.next() * (i + 1));
      const t = order[i]!;
      order[i] = order[j]!;
      order[j] = t;
    }
    orderCache.clear();
    orderCache.set(key, order);
  }
  return order;
}

function vocabText(tokenizerFile: string): string {
  if (tokenizerFile.endsWith('.json')) {
    const json = JSON.parse(fs.readFileSync(tokenizerFile, 'utf8')) as { model?: { vocab?: Record<string, number> } };
    const entries = Object.entries(json.model?.vocab ?? {}).sort((a, b) => a[1] - b[1]);
    return `${entries.map(([t]) => t).join('\n')}\n`;
  }
  return fs.readFileSync(tokenizerFile, 'utf8');
}

function appendMetric(tdir: string, record: Record<string, unknown>): void {
  fs.appendFileSync(path.join(tdir, 'metrics.jsonl'), `${JSON.stringify(record)}\n`);
}

/** Drop metric lines written after the checkpoint a run resumes from. */
function truncateMetrics(tdir: string, step: number): void {
  const file = path.join(tdir, 'metrics.jsonl');
  if (!fs.existsSync(file)) return;
  const kept = fs.readFileSync(file, 'utf8').split('\n').filter((l) => l && (JSON.parse(l) as { step: number }).step <= step);
  fs.writeFileSync(file, kept.length ? `${kept.join('\n')}\n` : '');
}

export { formatDuration, MODEL_FILES };
