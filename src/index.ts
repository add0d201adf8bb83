export { VERSION } from './version.js';
export { ModtuneError } from './errors.js';
export * from './onnx/index.js';
