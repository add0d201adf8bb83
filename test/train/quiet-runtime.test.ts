/**
 * Passing runs print nothing alarming: asking for CUDA on a CPU-only install is refused by modtune
 * before ONNX Runtime tries (and loudly fails) to load the provider library, and npm reads the
 * project's configuration without warnings while never running onnxruntime-node's CUDA download.
 */
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { cudaProviderInstalled } from '../../src/train/backends/cuda-provider.js';
import { ROOT, TORCH113 } from '../helpers/paths.js';

describe('quiet runtime', () => {
  it('--device cuda without the CUDA provider fails with our message and no native error output', () => {
    expect(cudaProviderInstalled()).toBe(false); // this CPU-only install (package.json denies the CUDA download)
    const script = `
      import { createSession } from ${JSON.stringify(path.join(ROOT, 'src/train/backends/native.ts'))};
      try { await createSession(${JSON.stringify(path.join(TORCH113, 'tiny_bert_torch113.onnx'))}, 'cuda'); console.log('created'); }
      catch (e) { console.log(e.name + ': ' + e.message); }
    `;
    const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: ROOT, encoding: 'utf8' });
    expect(r.stdout).toMatch(/^ModtuneError: --device cuda: cannot start ONNX Runtime's CUDA provider for .*tiny_bert_torch113\.onnx\. .*--onnxruntime-node-install=cuda12/);
    expect(r.stderr).not.toMatch(/Failed to load library|onnxruntime/);
  });

  it('npm reads the project without warnings, and onnxruntime-node\'s install script (the CUDA download) is denied', () => {
    const r = spawnSync('npm', ['config', 'get', 'registry'], { cwd: ROOT, encoding: 'utf8' });
    expect(r.status).toBe(0);
    expect(r.stderr).not.toMatch(/Unknown project config|warn/i);
    const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
    expect(pkg.allowScripts['onnxruntime-node']).toBe(false);
    const major = Number(spawnSync('npm', ['--version'], { encoding: 'utf8' }).stdout.split('.')[0]);
    if (major >= 11) {
      // npm 11+ runs a dependency's install scripts only when package.json's allowScripts approves them.
      const ls = spawnSync('npm', ['install-scripts', 'ls'], { cwd: ROOT, encoding: 'utf8' });
      expect(ls.stdout + ls.stderr).not.toMatch(/not yet covered/);
    }
  });
});
