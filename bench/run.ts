/**
 * `npm run bench`: runs every `bench/*.bench.ts` (or those named on the command line), each exporting
 * `run(): Promise<object>`, and writes one JSON report (and prints it): a new file in
 * `bench/results/runs/`, or with `--record` the committed `bench/results/latest-<area>.json` that the
 * README quotes (see results-file.ts).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as os from 'node:os';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseBenchArgs, writeBenchReport } from './results-file.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const args = parseBenchArgs(process.argv.slice(2));
const only = args.only;
const files = fs.readdirSync(here).filter((f) => f.endsWith('.bench.ts')).sort()
  .filter((f) => only.length === 0 || only.some((o) => f.startsWith(o)));
const report: Record<string, unknown> = {
  date: new Date().toISOString(),
  machine: { cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model, totalMemGiB: Math.round(os.totalmem() / 2 ** 30), node: process.version },
  results: {},
};
for (const f of files) {
  const name = f.replace(/\.bench\.ts$/, '');
  process.stderr.write(`bench: ${name}...\n`);
  const mod = await import(pathToFileURL(path.join(here, f)).href);
  (report.results as Record<string, unknown>)[name] = await mod.run();
}
const out = writeBenchReport(path.join(here, 'results'), args, JSON.stringify(report, null, 2) + '\n');
process.stdout.write(JSON.stringify(report, null, 2) + '\n');
process.stderr.write(`bench: wrote ${out}\n`);
