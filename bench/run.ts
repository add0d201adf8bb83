/**
 * `npm run bench`: runs every `bench/*.bench.ts` (or those named on the command line), each exporting
 * `run(): Promise<object>`, and writes one JSON report to `bench/results/latest.json` (and stdout).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as os from 'node:os';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const only = process.argv.slice(2);
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
const outDir = path.join(here, 'results');
fs.mkdirSync(outDir, { recursive: true });
const out = path.join(outDir, only.length ? `latest-${only.join('-')}.json` : 'latest.json');
fs.writeFileSync(out, JSON.stringify(report, null, 2) + '\n');
process.stdout.write(JSON.stringify(report, null, 2) + '\n');
process.stderr.write(`bench: wrote ${out}\n`);
