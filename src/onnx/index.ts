export * from './dtype.js';
export * from './tensor.js';
export * from './graph.js';
export * from './io.js';
