/** `npm run bench` never replaces the committed result files unless asked to with --record. */
import { describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseBenchArgs, writeBenchReport } from '../../bench/results-file.js';
import { ROOT, tmpDir } from '../helpers/paths.js';

describe('bench report files', () => {
  it('an ordinary run writes a new untracked file and leaves latest-<area>.json alone', () => {
    const dir = tmpDir();
    const committed = path.join(dir, 'latest-training.json');
    fs.writeFileSync(committed, '{"quoted": true}\n');
    const now = new Date('2026-12-06T17:05:09.123Z');
    const args = parseBenchArgs(['training']);
    expect(args).toEqual({ only: ['training'], record: false });
    const a = writeBenchReport(dir, args, '{"run": 1}\n', now);
    const b = writeBenchReport(dir, args, '{"run": 2}\n', now);
    expect(a).toBe(path.join(dir, 'runs', 'training-2026-12-06T17-05-09Z.json'));
    expect(b).toBe(path.join(dir, 'runs', 'training-2026-12-06T17-05-09Z-1.json'));
    expect(fs.readFileSync(a, 'utf8')).toBe('{"run": 1}\n');
    expect(fs.readFileSync(committed, 'utf8')).toBe('{"quoted": true}\n');
    expect(writeBenchReport(dir, parseBenchArgs([]), '{}\n', now)).toBe(path.join(dir, 'runs', 'all-2026-12-06T17-05-09Z.json'));
  });

  it('--record replaces the committed file', () => {
    const dir = tmpDir();
    const args = parseBenchArgs(['--record', 'training']);
    expect(args).toEqual({ only: ['training'], record: true });
    expect(writeBenchReport(dir, args, '{"new": 1}\n')).toBe(path.join(dir, 'latest-training.json'));
    expect(fs.readFileSync(path.join(dir, 'latest-training.json'), 'utf8')).toBe('{"new": 1}\n');
  });

  it('the results folder keeps run reports out of git', () => {
    const ignore = fs.readFileSync(path.join(ROOT, '.gitignore'), 'utf8').split('\n');
    expect(ignore).toContain('bench/results/runs/');
  });
});
