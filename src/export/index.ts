export { exportDelta, type ExportOptions, type ExportResult } from './export.js';
export { mergeDelta, mergeFiles, type MergeOptions, type MergeFilesOptions, type MergeFilesResult } from './merge.js';
export { buildMultiTaskModel, serveModelFiles, readMultiTask, taskNames, type MultiTaskModel, type ServeModelOptions } from './multitask.js';
export { readDelta, deltaName, deltaNumLabels, DELTA_FORMAT, DELTA_VERSION, DELTA_JSON, DELTA_TENSORS, type Delta, type DeltaManifest, type DeltaParameter } from './delta.js';
export { loadBase, checkBase, type BaseModel } from './apply.js';
export { storeWeightsAsFloat16, type Fp16Result } from './fp16.js';
export { readRun, resolveCheckpoint, type RunFolder, type RunCheckpoint } from './run.js';
export { META_TASK, META_TOKENIZER, META_DELTA_SHA, META_BASE_SHA, META_MULTITASK, type TaskMeta, type TokenizerMeta, type MultiTaskMeta } from './metadata.js';
