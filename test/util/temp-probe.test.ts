/**
 * A test file that makes temporary folders the usual ways (directly, and through a CLI process that
 * writes into one): run by itself it passes; test-cleanup.test.ts runs it in its own vitest with a
 * private temp folder and checks that nothing is left behind.
 */
import { describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { tmpDir } from '../helpers/paths.js';
import { runCli } from '../train/helpers.js';

describe('temporary folders of a test file', () => {
  it('exist while the file runs', async () => {
    const a = tmpDir();
    const b = tmpDir('modtune-probe-');
    fs.mkdirSync(path.join(b, 'nested', 'deeper'), { recursive: true });
    fs.writeFileSync(path.join(b, 'nested', 'deeper', 'file.txt'), 'x');
    const r = await runCli(['train', '--resume', '--out', path.join(a, 'run')]);
    expect(r.code).toBe(1);
    expect(fs.existsSync(a) && fs.existsSync(b)).toBe(true);
  });
});
