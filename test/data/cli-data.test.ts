import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, tmpDir } from '../helpers/paths.js';
import { buildZip } from './zip-writer.js';

/**
 * Runs the CLI's real entry (`main`, with its error handling) with the data command registered, the
 * way `src/cli/commands/index.ts` registers commands. Asynchronous, so this process's loopback
 * server keeps answering while the child downloads.
 */
function runCli(args: string[], env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const script = `
    import { commands } from './src/cli/commands/index.ts';
    import { register } from './src/cli/commands/data.ts';
    import { main } from './src/cli/main.ts';
    if (!commands.includes(register)) commands.push(register);
    await main(['node', 'modtune', ...${JSON.stringify(args)}]);
  `;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill(), 60_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

describe('CLI: modtune data pull', () => {
  let server: http.Server;
  let base = '';
  const zip = buildZip([
    { name: 'RTE/train.tsv', data: 'index\tsentence1\tsentence2\tlabel\n0\tA.\tB.\tentailment\n' },
    { name: 'RTE/dev.tsv', data: 'index\tsentence1\tsentence2\tlabel\n0\tC.\tD.\tnot_entailment\n' },
    { name: 'RTE/test.tsv', data: 'index\tsentence1\tsentence2\n0\tE.\tF.\n' },
  ]);
  beforeAll(async () => {
    server = http.createServer((req, res) => {
      if (req.url === '/glue/RTE.zip') res.writeHead(200, { 'Content-Length': zip.length }).end(zip);
      else res.writeHead(404).end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/glue`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  it('downloads into --cache and says where', async () => {
    const cache = tmpDir();
    const run = await runCli(['data', 'pull', 'rte', '--cache', cache], { MODTUNE_GLUE_URL: base });
    expect(run.stderr).not.toContain('internal error');
    expect(run.code).toBe(0);
    expect(run.stdout).toBe(`RTE: downloaded to ${path.join(cache, 'glue', 'RTE')}\n`);
    expect(fs.readFileSync(path.join(cache, 'glue', 'RTE', 'dev.tsv'), 'utf8')).toContain('not_entailment');
    const again = await runCli(['data', 'pull', 'RTE', '--cache', cache], { MODTUNE_GLUE_URL: base });
    expect(again.stdout).toContain('RTE: already in');
  }, 120_000);

  it('fails with one line for bad input', async () => {
    const cache = tmpDir();
    const unknown = await runCli(['data', 'pull', 'squad', '--cache', cache], { MODTUNE_GLUE_URL: base });
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toBe("modtune: unknown GLUE task 'squad': expected one of CoLA, SST-2, MRPC, STS-B, QQP, MNLI, QNLI, RTE, WNLI\n");
    const missing = await runCli(['data', 'pull', 'wnli', '--cache', cache], { MODTUNE_GLUE_URL: base });
    expect(missing.code).toBe(1);
    expect(missing.stderr).toBe(`modtune: download of ${base}/WNLI.zip failed: HTTP 404 Not Found\n`);
  }, 120_000);
});
