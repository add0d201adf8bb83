export { pullModel, type PullOptions, type PullResult, type PullEvent } from './pull.js';
export { downloadFile, parseContentRange, type DownloadOptions, type DownloadResult } from './download.js';
export { buildPulledModel, type BuildPulledOptions, type BuiltModel } from './convert.js';
export {
  validateRepoId, validateRevision, repoCacheDir, resolveUrl, defaultCacheDir, DEFAULT_ENDPOINT, DEFAULT_REVISION,
} from './repo.js';
