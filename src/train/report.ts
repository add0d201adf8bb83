/** Plain-text tables for the end-of-run report and `modtune eval`. */

/** Rows of metrics under one header of metric names, aligned; NaN shown as `nan`. */
export function metricsTable(rows: Array<{ label: string; metrics: Record<string, number> | null }>): string {
  const names: string[] = [];
  for (const r of rows) for (const k of Object.keys(r.metrics ?? {})) if (!names.includes(k)) names.push(k);
  const cell = (v: number | undefined) => (v === undefined ? '-' : Number.isFinite(v) ? v.toFixed(4) : 'nan');
  const table = [['', ...names], ...rows.map((r) => [r.label, ...names.map((n) => cell(r.metrics?.[n]))])];
  const widths = table[0]!.map((_, c) => Math.max(...table.map((row) => row[c]!.length)));
  return table.map((row) => row.map((v, c) => (c === 0 ? v.padEnd(widths[c]!) : v.padStart(widths[c]!))).join('  ').trimEnd()).join('\n');
}
