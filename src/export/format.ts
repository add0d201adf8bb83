/** Human-readable pieces of the export/merge/serve-model reports. */
import type { HeadSpec } from '../heads/index.js';

export function formatBytes(n: number): string {
  if (n >= 2 ** 30) return `${(n / 2 ** 30).toFixed(2)} GiB`;
  if (n >= 2 ** 20) return `${(n / 2 ** 20).toFixed(1)} MiB`;
  if (n >= 2 ** 10) return `${(n / 2 ** 10).toFixed(1)} KiB`;
  return `${n} B`;
}

export function formatCount(n: number): string {
  return n.toLocaleString('en-US');
}

export function describeHead(head: HeadSpec, labels: string[] | null): string {
  if (head.kind === 'regression') return 'regression (1 output)';
  return `${head.numLabels} labels${labels ? ` (${labels.join(', ')})` : ''}`;
}

export function describeMetrics(metrics: Record<string, number> | null): string {
  if (!metrics || Object.keys(metrics).length === 0) return 'no metrics recorded';
  return Object.entries(metrics).map(([k, v]) => `${k} ${Number.isInteger(v) ? v : v.toFixed(4)}`).join(', ');
}
