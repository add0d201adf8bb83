export { accuracy, f1Score, matthewsCorrelation, argmaxRows } from './classification.js';
export { pearson, spearman, averageRanks } from './correlation.js';
export { taskMetrics, combinedScore, mainMetric } from './glue.js';
