/**
 * Where `npm run bench` writes its report. The committed `bench/results/latest-<area>.json` files are
 * the measurements the README quotes, so an ordinary run never replaces them: it writes a new file
 * `bench/results/runs/<areas>-<UTC time>.json` (untracked, never overwritten). `--record` is the
 * explicit request to replace the committed file, for a measurement meant to be quoted.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

export interface BenchArgs {
  /** Areas named on the command line (empty: all). */
  only: string[];
  record: boolean;
}

export function parseBenchArgs(argv: string[]): BenchArgs {
  return { only: argv.filter((a) => a !== '--record'), record: argv.includes('--record') };
}

/** `2026-12-06T17-05-09Z`: sortable and valid in a file name everywhere. */
function stamp(d: Date): string {
  return d.toISOString().replace(/\.\d+Z$/, 'Z').replace(/:/g, '-');
}

/** Write the report; returns the file written. */
export function writeBenchReport(resultsDir: string, args: BenchArgs, text: string, now = new Date()): string {
  const areas = args.only.length ? args.only.join('-') : 'all';
  if (args.record) {
    const file = path.join(resultsDir, args.only.length ? `latest-${areas}.json` : 'latest.json');
    fs.mkdirSync(resultsDir, { recursive: true });
    fs.writeFileSync(file, text);
    return file;
  }
  const dir = path.join(resultsDir, 'runs');
  fs.mkdirSync(dir, { recursive: true });
  for (let n = 0; ; n++) {
    const file = path.join(dir, `${areas}-${stamp(now)}${n ? `-${n}` : ''}.json`);
    try {
      fs.writeFileSync(file, text, { flag: 'wx' }); // never over an earlier report
      return file;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
  }
}
