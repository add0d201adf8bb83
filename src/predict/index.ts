export { Predictor, type PredictorOptions, type PredictInput, type Prediction, type EncodedInput } from './predictor.js';
export { loadRuntime, type Runtime, type RuntimeName, type RuntimeOptions, type RuntimeSession, type RuntimeTensor } from './runtime.js';
export { readTextsTsv, type TextRow } from './tsv.js';
