/**
 * Child process of the pre-training benchmark: masked-LM training steps of a fresh bert-mini (every
 * parameter trains, decoder tied to the word embeddings, projection on the masked 15% only) through
 * the native backend, as `modtune pretrain` runs them; prints one JSON line.
 *   node --import tsx bench/workers/mlm-step.ts <vocab.txt> <batch> <seq> <steps> <threads> <dropout> <work-dir>
 */
import * as path from 'node:path';
import { presetConfig } from '../../src/bert/presets.js';
import { loadTokenizer } from '../../src/data/tokenizer.js';
import { generateMlmArtifacts } from '../../src/pretrain/artifacts.js';
import { maskBatch, maskingVocabulary } from '../../src/pretrain/masking.js';
import { nativeBackend } from '../../src/train/backends/native.js';
import { Rng } from '../../src/util/random.js';

const [vocabFile, batchArg, seqArg, stepsArg, threadsArg, dropoutArg, work] = process.argv.slice(2);
const batch = Number(batchArg), seq = Number(seqArg), steps = Number(stepsArg);
const tok = loadTokenizer(vocabFile!);
const config = { ...presetConfig('bert-mini'), vocabSize: tok.vocabSize };
const t0 = performance.now();
const art = generateMlmArtifacts({
  config, train: 'full', seed: 0, dropout: Number(dropoutArg), lr: 5e-4, weightDecay: 0.01, maxGradNorm: 1,
  warmupSteps: 0, totalSteps: steps, out: path.join(work!, 'mlm-artifacts'),
});
const generateMs = performance.now() - t0;
const backend = await nativeBackend.create({ artifactsDir: art.dir, manifest: art.manifest, device: 'cpu', threads: Number(threadsArg) });
const vocab = maskingVocabulary(tok);
const rng = new Rng(1);
const times: number[] = [];
let loss = NaN;
for (let s = 1; s <= steps; s++) {
  const blocks = Array.from({ length: batch }, () => Array.from({ length: seq - 2 }, () => 1000 + Math.floor(rng.next() * 29000)));
  const b = maskBatch(blocks, vocab, { rate: 0.15, wholeWord: false }, rng);
  const t = performance.now();
  loss = (await backend.trainStep(b, { learningRate: 5e-4, step: s, gradScale: 1 })).loss;
  times.push(performance.now() - t);
}
await backend.release();
const warm = times.slice(2).sort((a, b) => a - b);
const median = warm[Math.floor(warm.length / 2)]!;
process.stdout.write(JSON.stringify({
  batch, seq, steps, generateMs: Math.round(generateMs), stepMsMedian: +median.toFixed(1), tokensPerSec: Math.round((batch * seq * 1000) / median),
  loss, peakRssMB: Math.round(process.resourceUsage().maxRSS / 1024), stepMs: times.map((x) => +x.toFixed(1)),
}) + '\n');
