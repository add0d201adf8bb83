import { ModtuneError } from '../errors.js';

export type ScheduleKind = 'linear' | 'constant';

export interface Schedule {
  kind: ScheduleKind;
  /** The learning rate after warmup (the `--lr`). */
  peak: number;
  warmupSteps: number;
  /** Optimizer updates in the whole run; linear decay reaches 0 there. */
  totalSteps: number;
}

/**
 * The learning rate of optimizer update `step` (1-based). Follows Hugging Face's
 * `get_linear_schedule_with_warmup` / `get_constant_schedule_with_warmup` as the Trainer applies
 * them (the scheduler advances after each update, so update k uses the factor of k−1): a linear
 * ramp from 0 over `warmupSteps`, then linear decay to 0 at `totalSteps` (or constant).
 */
export function learningRate(step: number, s: Schedule): number {
  if (!Number.isInteger(step) || step < 1) throw new ModtuneError(`learning-rate schedule: step must be an integer ≥ 1, got ${step}`);
  const k = step - 1;
  // peak × (k / W), the order Hugging Face and the ort optimizer graph use, so both agree to the bit.
  if (k < s.warmupSteps) return s.peak * (k / Math.max(1, s.warmupSteps));
  if (s.kind === 'constant') return s.peak;
  return s.peak * Math.max(0, (s.totalSteps - k) / Math.max(1, s.totalSteps - s.warmupSteps));
}

/** Warmup steps for a ratio of the run (rounded up, as Hugging Face does). */
export function warmupStepsFor(ratio: number, totalSteps: number): number {
  if (!(ratio >= 0 && ratio <= 1)) throw new ModtuneError(`--warmup-ratio must be between 0 and 1, got ${ratio}`);
  // ceil as Hugging Face's Trainer does, but not of float noise: 0.07 × 100 is 7.000000000000001.
  return Math.max(0, Math.ceil(ratio * totalSteps - 1e-9));
}
