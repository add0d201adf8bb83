/**
 * Plots as SVG files, rendered headless in Node: a Vega-Lite spec is compiled to Vega and drawn by
 * Vega's own SVG renderer (a View with renderer 'none' and toSVG(): no browser, no canvas). The
 * spec is written beside the SVG (NAME.vl.json, data inline) so it opens in any Vega-Lite tool.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import { writeAtomic } from '../onnx/io.js';

export type { TopLevelSpec } from 'vega-lite';

export const VEGA_LITE_SCHEMA = 'https://vega.github.io/schema/vega-lite/v6.json';

export async function renderSvg(spec: TopLevelSpec): Promise<string> {
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** Write `NAME.vl.json` and `NAME.svg` into `dir`; returns the SVG's path. */
export async function writePlot(dir: string, name: string, spec: TopLevelSpec): Promise<string> {
  fs.mkdirSync(dir, { recursive: true });
  writeAtomic(path.join(dir, `${name}.vl.json`), `${JSON.stringify(spec, null, 2)}\n`);
  const svg = path.join(dir, `${name}.svg`);
  writeAtomic(svg, await renderSvg(spec));
  return svg;
}
