export { train, TrainInterrupted, formatMetrics } from './loop.js';
export { evaluateRun, type EvaluateRunOptions, type EvaluateRunResult } from './eval-run.js';
export { predict, scoreSplit, flattenScores, isImprovement, type Predictions, type SplitScore } from './evaluate.js';
export { learningRate, warmupStepsFor, type Schedule, type ScheduleKind } from './schedule.js';
export { DEFAULTS, RESULT_OPTIONS, RUNTIME_OPTIONS, type TrainOptions, type RunConfig, type RunTotals } from './options.js';
export {
  writeCheckpoint, readCheckpoint, readLatestCheckpoint, latestCheckpointStep, listCheckpoints, pruneCheckpoints,
  type Checkpoint, type CheckpointState, type BestRecord,
} from './checkpoint.js';
export { runFiles, readConfig, readMetrics, readSummary, type TrainSummary, type TrainRecord, type EvalRecord, type MetricsRecord } from './run-folder.js';
export {
  getBackend, registerBackend, BACKEND_NAMES, NativeBackend,
  type TrainBackend, type BackendFactory, type BackendOptions, type BackendName, type Device, type StepControl, type TensorMap,
} from './backends/index.js';
