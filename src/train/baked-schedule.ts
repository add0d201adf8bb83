/**
 * The ort artifacts bake the learning-rate schedule into optimizer_model.onnx (ONNX Runtime's JS
 * API cannot set the rate). A run whose options ask for another schedule is refused before it
 * tokenizes (rate and kind: known from the options alone) and before it trains (warmup and total
 * steps: known once the training set is counted), not at its first update.
 */
import { ModtuneError } from '../errors.js';
import type { Manifest } from '../artifacts/manifest.js';
import { bakedScheduleProblem } from './backends/ort-web.js';
import type { ScheduleKind } from './schedule.js';

/** Before the data: the rate and kind the options give against the baked ones. */
export function checkBakedRate(manifest: Manifest, given: { lr?: number; lrSchedule?: ScheduleKind }, dir: string): void {
  const s = manifest.optimizer.schedule;
  const problem = bakedScheduleProblem(manifest, { kind: given.lrSchedule ?? s.kind, peak: given.lr ?? manifest.optimizer.lr, warmupSteps: s.warmupSteps, totalSteps: s.totalSteps });
  if (problem) throw new ModtuneError(`--backend ort-web with the artifacts in ${dir}: ${problem}`);
}

/** Before training: the whole schedule the run will follow against the baked one. */
export function checkBakedSchedule(manifest: Manifest, schedule: { kind: ScheduleKind; peak: number; warmupSteps: number; totalSteps: number }, dir: string): void {
  const problem = bakedScheduleProblem(manifest, schedule);
  if (problem) throw new ModtuneError(`--backend ort-web with the artifacts in ${dir}: ${problem}`);
}
