/**
 * The test suite cleans up after itself: the temporary folders of a test file are removed when it
 * ends, and no process that loads ONNX Runtime leaves `/tmp/mat-debug-<pid>.log` behind.
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

  /** Run `code` (an ES module using this project through tsx) in a new process; its PID. */
  function childPid(code: string, env: NodeJS.ProcessEnv): number {
    const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { cwd: ROOT, env, encoding: 'utf8', timeout: 120_000 });
    expect(r.status, r.stderr).toBe(0);
    return r.pid!;
  }
  const model = path.join(FIXTURES, 'ort_bert_toy_optimized.onnx');
  const log = (pid: number) => `/tmp/mat-debug-${pid}.log`;

  it('ONNX Runtime 1.30 opens /tmp/mat-debug-<pid>.log when its telemetry starts; modtune keeps it from starting', () => {
    const session = `const ort = await import('onnxruntime-node'); await ort.InferenceSession.create(${JSON.stringify(model)}, { logSeverityLevel: 3 });`;
    // The cause, shown with telemetry explicitly on (and the file of that process removed).
    const on = childPid(session, envWithout('ORT_DISABLE_TELEMETRY', { ORT_DISABLE_TELEMETRY: '0' }));
    const made = fs.existsSync(log(on));
    fs.rmSync(log(on), { force: true });
    expect(made).toBe(true);
    // The trainer's backends and the predictor's runtime set ORT_DISABLE_TELEMETRY=1 unless the user chose.
    const viaBackends = childPid(`await import('./src/train/backends/index.ts'); ${session}`, envWithout('ORT_DISABLE_TELEMETRY'));
    expect(fs.existsSync(log(viaBackends))).toBe(false);
    const viaPredict = childPid(
      `import * as fs from 'node:fs'; const { loadRuntime } = await import('./src/predict/runtime.ts'); const rt = await loadRuntime('node'); await rt.createSession(fs.readFileSync(${JSON.stringify(model)}));`,
      envWithout('ORT_DISABLE_TELEMETRY'),
    );
    expect(fs.existsSync(log(viaPredict))).toBe(false);
  }, 400_000);
});
