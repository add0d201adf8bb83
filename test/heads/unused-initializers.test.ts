/**
 * Our graphs leave no initializer unread: ONNX Runtime warns "Removing initializer …" for each one
 * whenever it loads such a graph. A torch training-mode export's Dropouts (ratio and mode
 * constants) are the case: taking them out must take their constants too.
 */
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { attachHead } from '../../src/heads/index.js';
import type { Model } from '../../src/onnx/graph.js';
import { loadModel, saveModel } from '../../src/onnx/io.js';
import { ROOT, TORCH113, tmpDir } from '../helpers/paths.js';

const TRAINING_EXPORT = path.join(TORCH113, 'tiny_bert_torch113_training.onnx');

function unread(m: Model): string[] {
  const read = new Set<string>([...m.graph.outputs.map((o) => o.name)]);
  for (const n of m.graph.nodes) for (const i of n.inputs) read.add(i);
  return [...m.graph.initializers.keys()].filter((k) => !read.has(k));
}

describe('no unread initializers', () => {
  it('a headed torch training export keeps no Dropout constants, and ONNX Runtime loads it without warnings', () => {
    const base = loadModel(TRAINING_EXPORT);
    expect(base.graph.nodes.some((n) => n.opType === 'Dropout')).toBe(true);
    for (const dropout of [0, 0.1]) {
      const headed = attachHead(base, { kind: 'classification', numLabels: 2 }, { dropout, seed: 1, label: 'fixture' });
      for (const [which, m] of [['train', headed.train], ['eval', headed.eval], ['infer', headed.infer]] as const) {
        expect(unread(m), `${which}, dropout ${dropout}`).toEqual([]);
      }
    }
    const dir = tmpDir('modtune-unread-');
    const file = path.join(dir, 'infer.onnx');
    saveModel(attachHead(base, { kind: 'classification', numLabels: 2 }, { dropout: 0, seed: 1, label: 'fixture' }).infer, file);
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', `import * as ort from 'onnxruntime-node'; await ort.InferenceSession.create(${JSON.stringify(file)}); console.log('loaded');`], { cwd: ROOT, encoding: 'utf8' });
    expect(r.stdout.trim()).toBe('loaded');
    expect(r.stderr).not.toMatch(/Removing initializer/);
    fs.rmSync(dir, { recursive: true, force: true });
  });
});
