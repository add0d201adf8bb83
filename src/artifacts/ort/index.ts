export {
  CHECKPOINT_IDENTIFIER, CHECKPOINT_VERSION, EXTERNAL_DATA_THRESHOLD, ckptFloat32, ckptTensorF32, emptyProperties, encodeCheckpoint, readCheckpoint, writeCheckpoint,
} from './checkpoint.js';
export type { Checkpoint, CkptOptimizerGroup, CkptParameterState, CkptTensor, ReadCheckpointOptions, WriteCheckpointOptions } from './checkpoint.js';
export {
  OPTIMIZER_FLAG, OPTIMIZER_INPUTS, buildAdamWOptimizerModel, buildOrtOptimizerModel, buildSgdOptimizerModel, resolveOrtWeightDecay, scheduleFactor, scheduledLearningRate,
} from './optimizer.js';
export type { AdamWOptions, DecayParam, LrSchedule, SgdOptions } from './optimizer.js';
export { LAZY_RESET_GRAD, buildOrtCheckpoint, buildOrtTrainingModels, gradBufferName, gradOutName, lossSeedName } from './training-model.js';
export type { OrtOptimizerState, OrtParameter, OrtTrainingModelOptions, OrtTrainingModels } from './training-model.js';
