/** modtune's library: every CLI command is one of these functions first. */
export { VERSION } from './version.js';
export { ModtuneError } from './errors.js';
export * from './onnx/index.js';
export * from './bert/index.js';
export { pullModel, buildPulledModel } from './hub/index.js';
export * from './modules/index.js';
export { attachHead, lowerDropouts, dropoutRates, type HeadSpec, type HeadedModel } from './heads/index.js';
export { buildBackward, upgradeOpset, GRADIENT_RULES } from './autodiff/index.js';
export { generateArtifacts, readManifest, resolveHead, type ArtifactOptions, type ArtifactResult } from './artifacts/generate.js';
export type { Manifest, ModelSpec, IoSpec, IoRole } from './artifacts/manifest.js';
export * from './train/index.js';
export * from './data/index.js';
export * from './metrics/index.js';
export * from './export/index.js';
export { Predictor, loadRuntime, readTextsTsv, type PredictorOptions, type Prediction } from './predict/index.js';
export { runDemo, demoModel } from './demo/index.js';
export * from './sweep/index.js';
export { serveWeb, prepareSite, buildPage, type WebOptions, type WebServer, type WebSiteOptions, type PreparedSite, type SiteManifest } from './web/index.js';
