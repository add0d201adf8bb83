export {
  type BertConfig, type ModelType, type HiddenAct, MODEL_TYPES, HIDDEN_ACTS,
  parseHfConfig, toHfConfig, defaultId2Label, PRESETS, presetConfig, type PresetName,
} from './config.js';
export {
  type SafetensorsFile, type SafetensorsTensor, type SafetensorsInput, type ReadOptions,
  parseSafetensors, readSafetensors, writeSafetensors, readSafetensorsIndex, floatToBfloat16,
} from './safetensors.js';
export {
  type WeightMap, type WeightTensor, type ParamSpec, type ParamKind, type ParamGroup, type BertLayout,
  parameterSpecs, parameterCount, modelPrefix, embeddingWidth, isBufferName, normalizeWeightNames,
  checkWeights, loadWeights, weightsFromModel, headLabelsInWeights,
} from './weights.js';
export { buildBert, countParameters, type BuildBertOptions } from './build.js';
