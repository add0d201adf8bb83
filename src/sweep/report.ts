/**
 * report.md and report.html: the paper's table (selections × tasks, with trainable count and share),
 * the layer-wise LayerNorm table, top vs random, the base model's weight magnitudes, the learning
 * rates chosen, failures, and every run with its curves. Both are written from the same tables.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { getGlueTask } from '../data/glue-tasks.js';
import { formatCount, formatShare } from '../modules/summary.js';
import { writeAtomic } from '../onnx/io.js';
import { readMetrics } from '../train/run-folder.js';
import { aggregate, layerOf, mean, subsetOf, type Score } from './aggregate.js';
import { cellRunDir, sweepFiles, type SweepManifest } from './folder.js';
import { formatLr } from './grid.js';
import { LR_GRIDS } from './lr.js';
import type { ModuleMagnitude } from './magnitude.js';
import { writePlot } from '../util/plot.js';
import { layerwiseSpec, magnitudeLayersSpec, magnitudeSpec, runCurvesSpec, scoreVsShareSpec, topVsRandomSpec } from './plots.js';
import type { CellResult } from './results.js';

interface Table {
  title: string;
  note?: string;
  header: string[];
  rows: string[][];
  /** Plots shown under the table (paths relative to the sweep folder). */
  plots?: string[];
}

export interface ReportFiles {
  markdown: string;
  html: string;
  plots: string[];
}

export async function writeReport(dir: string, manifest: SweepManifest, results: Map<string, CellResult>, magnitudes: ModuleMagnitude[]): Promise<ReportFiles> {
  const files = sweepFiles(dir);
  const inGrid = new Set(manifest.cells.map((c) => c.id));
  const current = [...results.values()].filter((r) => inGrid.has(r.id));
  const scores = aggregate(current);
  const tasks = manifest.grid.tasks;
  const plots: string[] = [];
  const plot = async (name: string, spec: Parameters<typeof writePlot>[2]) => {
    plots.push(await writePlot(files.plots, name, spec));
    return `plots/${name}.svg`;
  };

  const fmtScore = (s: Score | undefined) => (s ? (s.seeds > 1 ? `${s.mean.toFixed(4)} ± ${s.std.toFixed(4)}` : s.mean.toFixed(4)) : '-');
  const scoreOf = (selection: string, task: string) => scores.find((s) => s.selection === selection && s.task === task);
  const taskHeader = tasks.map((t) => `${t} (${getGlueTask(t).mainMetric})`);
  const countCells = (sel: string) => {
    const c = manifest.selections[sel];
    return c ? [formatCount(c.trainableCount), formatShare(c.trainableCount, c.totalCount)] : ['-', '-'];
  };
  const row = (sel: string) => {
    const per = tasks.map((t) => scoreOf(sel, t));
    const avg = per.every((s) => s) ? mean(per.map((s) => s!.mean)).toFixed(4) : '-';
    return [`\`${sel}\``, ...countCells(sel), ...per.map(fmtScore), avg];
  };

  const tables: Table[] = [];
  const layers = manifest.base.numLayers;
  const moduleRows = manifest.grid.train.filter((s) => layerOf(s, layers) === null && !subsetOf(s));
  const layerRows = manifest.grid.train.filter((s) => layerOf(s, layers) !== null).sort((a, b) => layerOf(a, layers)! - layerOf(b, layers)!);
  const subsetRows = manifest.grid.train.filter((s) => subsetOf(s));
  const seedsNote = `dev score of the best evaluation, mean ± standard deviation over ${manifest.grid.seeds.length} seed(s) at the learning rate with the best mean (chosen per selection and task)`;
  if (moduleRows.length) {
    tables.push({
      title: 'Modules trained alone', note: `${seedsNote}; trainable counts include the task head of ${tasks[0]}`,
      header: ['selection', 'trainable', 'share', ...taskHeader, 'average'], rows: moduleRows.map(row),
      plots: scores.length ? [await plot('score-vs-share', scoreVsShareSpec(scores))] : [],
    });
  }
  if (layerRows.length) {
    tables.push({
      title: 'LayerNorms of one layer', note: seedsNote, header: ['selection', 'trainable', 'share', ...taskHeader, 'average'], rows: layerRows.map(row),
      plots: scores.some((s) => layerOf(s.selection, layers) !== null) ? [await plot('layerwise-layernorm', layerwiseSpec(scores, layers))] : [],
    });
  }
  if (subsetRows.length) {
    const pairs = [...new Set(subsetRows.map((s) => `${subsetOf(s)!.target}:${subsetOf(s)!.amount}`))];
    tables.push({
      title: 'Largest-magnitude entries vs random entries', note: seedsNote,
      header: ['entries', ...tasks.flatMap((t) => [`${t} top`, `${t} random`])],
      rows: pairs.map((p) => {
        const [target, amount] = p.split(':') as [string, string];
        return [`${target} ${amount}`, ...tasks.flatMap((t) => ['top', 'random'].map((k) => fmtScore(scoreOf(`${target}:${k}=${amount}`, t))))];
      }),
      plots: scores.some((s) => subsetOf(s.selection)) ? [await plot('top-vs-random', topVsRandomSpec(scores))] : [],
    });
  }
  if (magnitudes.length) {
    tables.push({
      title: 'Base model: mean |w| per module', note: 'mean absolute value over every entry of the module, from the base model\'s parameters',
      header: ['module', 'role', 'entries', 'mean |w|'],
      rows: magnitudes.map((m) => [m.module, m.role, formatCount(m.entries), m.meanAbs.toPrecision(4)]),
      plots: [await plot('magnitude', magnitudeSpec(magnitudes))],
    });
    const L = manifest.base.numLayers;
    tables.push({
      title: 'Base model: mean |w| of the weights per layer', header: ['module', ...Array.from({ length: L }, (_, l) => `L${l}`)],
      rows: magnitudes.filter((m) => m.role === 'weight' && m.perLayer.length).map((m) => [m.module, ...m.perLayer.map((v) => (v === null ? '-' : v.toPrecision(3)))]),
      plots: [await plot('magnitude-layers', magnitudeLayersSpec(magnitudes))],
    });
  }
  const multiLr = scores.filter((s) => s.byLr.length > 1);
  if (multiLr.length) {
    tables.push({
      title: 'Learning rates', note: `mean dev score per rate; the chosen one in bold. --lr auto grids: ${LR_GRIDS.map((g) => `${g.label}: ${g.rates.map(formatLr).join(', ')}`).join('; ')}`,
      header: ['selection', 'task', 'rates (mean dev score)'],
      rows: multiLr.map((s) => [`\`${s.selection}\``, s.task, s.byLr.map((b) => (b.lr === s.lr ? `**${formatLr(b.lr)}: ${b.mean.toFixed(4)}**` : `${formatLr(b.lr)}: ${b.mean.toFixed(4)}`)).join(', ')]),
    });
  }
  const failed = current.filter((r) => r.status === 'failed');
  if (failed.length) tables.push({ title: 'Failed cells', header: ['cell', 'error'], rows: failed.map((r) => [r.id, r.error ?? '']) });

  // Every run, with its curves.
  const runRows: string[][] = [];
  for (const c of manifest.cells) {
    const r = results.get(c.id);
    const runDir = cellRunDir(dir, c.id);
    let curves = '';
    const metricsFile = path.join(runDir, 'metrics.jsonl');
    if (r?.status === 'done' && fs.existsSync(metricsFile)) {
      const svg = path.join(runDir, 'curves.svg');
      // Drawn once per finished run (again only if its metrics changed since).
      const fresh = fs.existsSync(svg) && fs.statSync(svg).mtimeMs >= fs.statSync(metricsFile).mtimeMs;
      const records = fresh ? [] : readMetrics(runDir);
      if (records.length) await writePlot(runDir, 'curves', runCurvesSpec(records, `${c.task} · ${c.selection} · lr ${formatLr(c.lr)} · seed ${c.seed}`));
      if (fresh || records.length) curves = `runs/${c.id}/curves.svg`;
    }
    runRows.push([c.id, r?.status ?? 'pending', r?.mainMetric != null ? r.mainMetric.toFixed(4) : '-', r ? `${r.wallSeconds.toFixed(0)} s` : '-', r?.worker ?? '-', curves ? `[curves](${curves})` : '-']);
  }
  tables.push({ title: 'Runs', header: ['cell', 'status', 'dev score', 'wall time', 'worker', 'curves'], rows: runRows });

  const done = current.filter((r) => r.status === 'done').length;
  const intro = [
    `base model: ${manifest.base.name ? `\`${manifest.base.name}\`, modtune's embedded default` : `\`${manifest.base.file}\``} (sha256 ${manifest.base.sha256.slice(0, 16)}…, ${manifest.base.numLayers} layers)`,
    `cells: ${manifest.cells.length} — ${done} done, ${failed.length} failed, ${manifest.cells.length - done - failed.length} pending`,
    `tasks: ${tasks.join(', ')}; seeds: ${manifest.grid.seeds.join(', ')}; learning rates: ${Array.isArray(manifest.grid.lr) ? manifest.grid.lr.map(formatLr).join(', ') : manifest.grid.lr}`,
    `shared options: ${Object.entries(manifest.grid).filter(([k]) => !['model', 'tokenizer', 'tasks', 'train', 'seeds', 'lr'].includes(k)).map(([k, v]) => `${k} ${v}`).join(', ') || 'train defaults'}`,
  ];
  writeAtomic(files.reportMd, markdown(intro, tables));
  writeAtomic(files.reportHtml, html(intro, tables));
  return { markdown: files.reportMd, html: files.reportHtml, plots };
}

function markdown(intro: string[], tables: Table[]): string {
  const out = ['# Sweep report', '', ...intro.map((l) => `- ${l}`), ''];
  for (const t of tables) {
    out.push(`## ${t.title}`, '');
    if (t.note) out.push(`${t.note}.`, '');
    const cells = (row: string[]) => `| ${row.map((c) => c.replace(/\|/g, '\\|')).join(' | ')} |`;
    out.push(cells(t.header), `|${t.header.map((_, i) => (i === 0 ? '---' : '---:')).join('|')}|`);
    for (const r of t.rows) out.push(cells(r));
    out.push('');
    for (const p of t.plots ?? []) out.push(`![${t.title}](${p})`, '');
  }
  return out.join('\n');
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/** The few markdown forms the cells use: `code`, **bold**, [text](link). */
function inline(s: string): string {
  return esc(s)
    .replace(/`([^`]+)`/g, '<code>$1</code>')
    .replace(/\*\*([^*]+)\*\*/g, '<b>$1</b>')
    .replace(/\[([^\]]+)\]\(([^)\s]+)\)/g, '<a href="$2">$1</a>');
}

function html(intro: string[], tables: Table[]): string {
  const body = tables.map((t) => [
    `<h2>${esc(t.title)}</h2>`,
    t.note ? `<p class="note">${inline(t.note)}.</p>` : '',
    `<table><thead><tr>${t.header.map((h) => `<th>${esc(h)}</th>`).join('')}</tr></thead><tbody>`,
    ...t.rows.map((r) => `<tr>${r.map((c) => `<td>${inline(c)}</td>`).join('')}</tr>`),
    '</tbody></table>',
    ...(t.plots ?? []).map((p) => `<p><img src="${esc(p)}" alt="${esc(t.title)}"></p>`),
  ].join('\n')).join('\n');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>modtune sweep report</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 72em; padding: 0 1em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1em; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
.note { color: #555; font-size: 0.9em; }
</style></head><body>
<h1>Sweep report</h1>
<ul>${intro.map((l) => `<li>${inline(l)}</li>`).join('')}</ul>
${body}
</body></html>
`;
}
