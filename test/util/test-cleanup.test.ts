/**
 * The test suite cleans up after itself: the temporary folders of a test file are removed when it
 * ends, and no process that loads ONNX Runtime leaves `mat-debug-<pid>.log` in the temp folder.
 */
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { FIXTURES, ROOT, tmpDir } from '../helpers/paths.js';

/** The environment of this process without ORT_DISABLE_TELEMETRY (the test setup sets it). */
function envWithout(name: string, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return { ...Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== name)), ...extra };
}

/**
 * As envWithout, also without CI: ONNX Runtime's telemetry does not start when CI is set (seen with
 * CI=true, which CI runs use), so the cause and the cure are both shown with CI unset.
 */
function telemetryEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env = envWithout('ORT_DISABLE_TELEMETRY', extra);
  delete env.CI;
  return env;
}

describe('the test suite cleans up after itself', () => {
  it('removes every temporary folder a test file made, also those a CLI process wrote into', () => {
    const temp = tmpDir('modtune-cleanup-');
    const r = spawnSync(process.execPath, [path.join(ROOT, 'node_modules/vitest/vitest.mjs'), 'run', 'test/util/temp-probe.test.ts'], {
      cwd: ROOT, env: { ...process.env, TMPDIR: temp }, encoding: 'utf8', timeout: 300_000,
    });
    expect(r.status, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/1 passed/);
    expect(fs.readdirSync(temp).filter((n) => n.startsWith('modtune-'))).toEqual([]);
  }, 330_000);

  /** Run `code` (an ES module using this project through tsx) in a new process with its own temp folder; what it left there. */
  function leftInTemp(code: string, env: NodeJS.ProcessEnv): string[] {
    const temp = tmpDir('modtune-ort-temp-');
    const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { cwd: ROOT, env: { ...env, TMPDIR: temp }, encoding: 'utf8', timeout: 120_000 });
    expect(r.status, r.stderr).toBe(0);
    return fs.readdirSync(temp).filter((n) => n !== 'tsx-0').sort(); // tsx-0: tsx's own compile cache
  }
  const model = path.join(FIXTURES, 'ort_bert_toy_optimized.onnx');

  it('ONNX Runtime 1.30 leaves mat-debug-<pid>.log in the temp folder when its telemetry starts; modtune keeps it from starting', () => {
    const session = `const ort = await import('onnxruntime-node'); await ort.InferenceSession.create(${JSON.stringify(model)}, { logSeverityLevel: 3 });`;
    // The cause, shown with telemetry explicitly on: its trace log (and session file) in the temp folder.
    expect(leftInTemp(session, telemetryEnv({ ORT_DISABLE_TELEMETRY: '0' }))).toEqual(expect.arrayContaining([expect.stringMatching(/^mat-debug-\d+\.log$/)]));
    // The trainer's backends and the predictor's runtime set ORT_DISABLE_TELEMETRY=1 unless the user chose.
    expect(leftInTemp(`await import('./src/train/backends/index.ts'); ${session}`, telemetryEnv())).toEqual([]);
    expect(leftInTemp(
      `import * as fs from 'node:fs'; const { loadRuntime } = await import('./src/predict/runtime.ts'); const rt = await loadRuntime('node'); await rt.createSession(fs.readFileSync(${JSON.stringify(model)}));`,
      telemetryEnv(),
    )).toEqual([]);
  }, 400_000);
});
