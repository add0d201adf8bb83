/**
 * The two formats of one selection are the same training: native train_step.onnx on stock
 * onnxruntime-node and the ORT artifacts on onnxruntime-web's training build, fed the same five
 * batches from the same parameters (`dropout: 0`, linear schedule baked into the ORT optimizer),
 * give the same loss at every step and the same parameters after five AdamW updates.
 *
 * Tolerances, and why (measured here: loss ≤ 1.1e-6 relative; parameters ≤ 2.3e-4·Σlr, at
 * layer.1.attention.output.dense.weight[397], whose gradient is ~0 and changes sign):
 * - loss: ≤ 1e-5 relative. Two different kernel sets (MLAS vs wasm) sum in different orders, so the
 *   forward passes differ by float32 rounding, ~1e-7 relative, and five updates later by ~1e-6.
 * - parameters, per entry: |native − ort| ≤ 2e-6·|value| + 1e-3·Σ_t lr_t. The first term is
 *   rounding of the stored values; the second is AdamW's: its update lr·m̂/(√v̂ + ε) divides by √v̂,
 *   so for entries whose gradient is small or changes sign (m̂ ≪ √v̂) a rounding-level difference in
 *   the gradients becomes a difference of up to ~1e-4·lr per step rather than ~1e-7·lr.
 * - attention key biases: their gradient is 0 up to rounding noise (~1e-10, below ε = 1e-8), so
 *   each runtime moves them by sub-ε noise in its own direction. Checked instead: both moved by
 *   less than 2% of Σ_t lr_t (an ordinary AdamW step moves an entry by ~lr_t), i.e. both agree that
 *   the gradient is zero.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { generateArtifacts } from '../../../src/artifacts/generate.js';
import type { Manifest } from '../../../src/artifacts/manifest.js';
import { scheduledLearningRate } from '../../../src/artifacts/ort/optimizer.js';
import { tmpDir } from '../../helpers/paths.js';
import { Batch, initialValues, masks, NativeTrainer, OrtTrainer, syntheticBatch, writeBuilderTiny } from './drive.js';

const STEPS = 5;
const LOSS_REL = 1e-5;
const VALUE_REL = 2e-6;
const ADAMW_ABS_PER_LR = 1e-3;
const NOISE_MOVE_PER_LR = 0.02;

const CASES = [
  // Everything trains (embedding Gathers, attention, FFN, LayerNorms, pooler, classifier); no decay.
  { train: 'full', lr: 5e-3, weightDecay: 0, freezeHead: false },
  // Only weights that decay under Hugging Face's rule: ORT's one group-wide decay equals native's.
  { train: 'attention:weight', lr: 5e-3, weightDecay: 0.01, freezeHead: true },
  // Masked entries: stay put in both.
  { train: 'layernorm:top=10%', lr: 2e-2, weightDecay: 0, freezeHead: false },
];

let work: string;
let model: string;
let batches: Batch[];
beforeAll(() => {
  work = tmpDir('modtune-proof-cross-');
  model = writeBuilderTiny(work);
  batches = [1, 2, 3, 4, 5].map((seed) => syntheticBatch({ batch: 8, sequence: 10, numLabels: 3, vocab: 120, seed }));
});
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

for (const c of CASES) {
  describe(`--train ${c.train}, weight decay ${c.weightDecay}`, () => {
    let dir: string;
    let m: Manifest;
    const losses = { native: [] as number[], ort: [] as number[] };
    let native: Map<string, Float32Array>;
    let ortValues: Map<string, Float32Array>;
    let sumLr = 0;

    beforeAll(async () => {
      dir = path.join(work, c.train.replace(/[^a-z0-9]+/gi, '_'));
      m = generateArtifacts({
        model, out: dir, train: c.train, numLabels: 3, format: 'both', freezeHead: c.freezeHead, dropout: 0,
        lr: c.lr, lrSchedule: 'linear', warmupSteps: 0, totalSteps: 10, weightDecay: c.weightDecay,
      }).manifest;
      const [n, o] = [await NativeTrainer.create(dir, m), await OrtTrainer.create(dir, m)];
      for (const b of batches.slice(0, STEPS)) {
        losses.native.push(await n.step(b));
        losses.ort.push(await o.step(b));
      }
      native = n.state.params;
      ortValues = await o.trainable();
      await Promise.all([n.release(), o.release()]);
      for (let t = 1; t <= STEPS; t++) sumLr += scheduledLearningRate(m.optimizer.lr, m.optimizer.schedule, t);
    });

    it('uses the same optimizer in both formats', () => {
      expect(m.ort!.weightDecay).toBe(m.optimizer.weightDecay);
      expect(m.optimizer.weightDecay).toBe(c.weightDecay);
      if (c.weightDecay > 0) expect(m.parameters.every((p) => p.weightDecay)).toBe(true);
    });

    it(`gives the same loss at each of ${STEPS} AdamW steps (≤ ${LOSS_REL} relative)`, () => {
      expect(losses.native).toHaveLength(STEPS);
      for (let i = 0; i < STEPS; i++) {
        expect(Math.abs(losses.native[i]! - losses.ort[i]!), `step ${i + 1}: native ${losses.native[i]} vs ort ${losses.ort[i]}`)
          .toBeLessThanOrEqual(LOSS_REL * Math.abs(losses.native[i]!));
      }
    });

    it('ends with the same parameters, up to float32 rounding and AdamW\'s amplification of it', () => {
      const initial = initialValues(dir, m);
      const maskOf = masks(dir, m);
      const problems: string[] = [];
      let worst = { ratio: 0, what: '' };
      for (const p of m.parameters) {
        const a = native.get(p.name)!;
        const b = ortValues.get(p.name)!;
        const a0 = initial.get(p.name)!;
        const mask = maskOf.get(p.name);
        if (!a.some((v, i) => v !== a0[i])) problems.push(`${p.name} did not move`);
        const noise = p.name.endsWith('attention.self.key.bias');
        for (let i = 0; i < a.length; i++) {
          if (noise) {
            const moved = Math.max(Math.abs(a[i]! - a0[i]!), Math.abs(b[i]! - a0[i]!));
            if (moved > NOISE_MOVE_PER_LR * sumLr) problems.push(`${p.name}[${i}] moved by ${moved} (native ${a[i]}, ort ${b[i]}, from ${a0[i]})`);
          } else if (mask && mask[i] === 0) {
            if (a[i] !== a0[i] || b[i] !== a0[i]) problems.push(`${p.name}[${i}] is masked out but moved: ${a0[i]} → native ${a[i]}, ort ${b[i]}`);
          } else {
            const d = Math.abs(a[i]! - b[i]!);
            const ratio = d / (VALUE_REL * Math.abs(a[i]!) + ADAMW_ABS_PER_LR * sumLr);
            if (ratio > worst.ratio) worst = { ratio, what: `${p.name}[${i}]: native ${a[i]} vs ort ${b[i]} (|diff| ${d.toExponential(2)} = ${(d / sumLr).toExponential(2)}·Σlr)` };
          }
        }
      }
      expect(problems).toEqual([]);
      expect(worst.ratio, `worst entry ${worst.what}`).toBeLessThanOrEqual(1);
    });
  });
}
