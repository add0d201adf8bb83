/** `modtune plot RUN_DIR`: the loss and dev-metric curves of one training run, as SVG. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ModtuneError } from '../errors.js';
import { readMetrics, runFiles } from '../train/run-folder.js';
import { writePlot } from '../util/plot.js';
import { runCurvesSpec } from './plots.js';

export interface PlotRunOptions {
  run: string;
  /** Folder for curves.svg and curves.vl.json; default the run folder. */
  out?: string;
}

export async function plotRun(o: PlotRunOptions): Promise<{ svg: string; spec: string; points: number }> {
  const dir = path.resolve(o.run);
  const files = runFiles(dir);
  if (!fs.existsSync(files.metrics)) throw new ModtuneError(`${o.run}: no metrics.jsonl; expected a run folder of 'modtune train' (or a sweep's runs/CELL)`);
  const records = readMetrics(dir);
  if (!records.length) throw new ModtuneError(`${files.metrics}: no records yet; nothing to plot`);
  let title = path.basename(dir);
  try {
    const cfg = JSON.parse(fs.readFileSync(files.config, 'utf8')) as { task?: string; train?: string; lr?: number; seed?: number };
    title = `${cfg.task} · ${cfg.train} · lr ${cfg.lr} · seed ${cfg.seed}`;
  } catch {
    // No readable config: the folder name titles the plot.
  }
  const outDir = path.resolve(o.out ?? dir);
  const svg = await writePlot(outDir, 'curves', runCurvesSpec(records, title));
  return { svg, spec: path.join(outDir, 'curves.vl.json'), points: records.length };
}
