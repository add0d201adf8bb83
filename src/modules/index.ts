export * from './types.js';
export { discoverParameters, type DiscoverOptions } from './discover.js';
export { selectParameters, type SelectOptions } from './select.js';
export { unshareParameters } from './unshare.js';
export { parseSpec, GROUPS, type SpecTerm } from './spec.js';
export { moduleTable, formatModuleTable, formatCount, formatShare, describeShape, describeTrainable, type ModuleRow } from './summary.js';
