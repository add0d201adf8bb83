import * as fs from 'node:fs';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { ZipReader, crc32, extractZip, safeEntryPath } from '../../src/data/zip.js';
import { ModtuneError } from '../../src/errors.js';
import { tmpDir } from '../helpers/paths.js';
import { buildZip } from './zip-writer.js';

function writeZip(buf: Buffer): string {
  const file = path.join(tmpDir(), 'a.zip');
  fs.writeFileSync(file, buf);
  return file;
}

describe('zip reader', () => {
  it('extracts stored and deflated entries and folders', () => {
    const big = 'row\twith\ttabs\n'.repeat(5000);
    const zip = writeZip(buildZip([
      { name: 'CoLA/' },
      { name: 'CoLA/train.tsv', data: big },
      { name: 'CoLA/dev.tsv', data: 'stored text', method: 0 },
      { name: 'CoLA/empty.tsv', data: '' },
      { name: 'CoLA/original/raw/in_domain.tsv', data: 'x' },
    ]));
    const target = tmpDir();
    const written = extractZip(zip, target);
    expect(written.map((f) => path.relative(target, f)).sort()).toEqual(['CoLA/dev.tsv', 'CoLA/empty.tsv', 'CoLA/original/raw/in_domain.tsv', 'CoLA/train.tsv']);
    expect(fs.readFileSync(path.join(target, 'CoLA/train.tsv'), 'utf8')).toBe(big);
    expect(fs.readFileSync(path.join(target, 'CoLA/dev.tsv'), 'utf8')).toBe('stored text');
    expect(fs.readFileSync(path.join(target, 'CoLA/empty.tsv'), 'utf8')).toBe('');
  });

  it('reads ZIP64 end records and extra fields', () => {
    const zip = writeZip(buildZip([{ name: 'QQP/dev.tsv', data: 'id\tq\n'.repeat(100) }, { name: 'QQP/b.txt', data: 'b', method: 0 }], { zip64: true }));
    const reader = ZipReader.open(zip);
    expect(reader.entries.map((e) => [e.name, e.size])).toEqual([['QQP/dev.tsv', 500], ['QQP/b.txt', 1]]);
    reader.close();
    const target = tmpDir();
    extractZip(zip, target);
    expect(fs.readFileSync(path.join(target, 'QQP/dev.tsv'), 'utf8')).toBe('id\tq\n'.repeat(100));
  });

  // Only where a Python is at hand: the suite itself never needs one.
  const python = ['/usr/bin/python3', 'python3'].find((p) => {
    try { execFileSync(p, ['-c', 'import zipfile'], { stdio: 'ignore' }); return true; } catch { return false; }
  });
  it.skipIf(!python)('reads archives written by another tool (Python zipfile)', () => {
    const zip = path.join(tmpDir(), 'py.zip');
    execFileSync(python!, ['-c', `import zipfile
with zipfile.ZipFile(${JSON.stringify(zip)}, 'w', zipfile.ZIP_DEFLATED) as z:
    z.writestr('RTE/dev.tsv', 'index\\tsentence1\\n' * 300)
    z.writestr('RTE/note.txt', 'hi', compress_type=zipfile.ZIP_STORED)`]);
    const target = tmpDir();
    extractZip(zip, target);
    expect(fs.readFileSync(path.join(target, 'RTE/dev.tsv'), 'utf8')).toBe('index\tsentence1\n'.repeat(300));
    expect(fs.readFileSync(path.join(target, 'RTE/note.txt'), 'utf8')).toBe('hi');
  });

  it.each([
    ['../evil.txt'],
    ['CoLA/../../evil.txt'],
    ['/etc/evil.txt'],
    ['..\\evil.txt'],
    ['C:/evil.txt'],
  ])('refuses an entry escaping the target: %s', (name) => {
    const zip = writeZip(buildZip([{ name: 'ok.txt', data: 'fine' }, { name, data: 'bad' }]));
    const target = path.join(tmpDir(), 'out');
    expect(() => extractZip(zip, target)).toThrow(/would be written outside the target folder; refusing to extract/);
    // Names are all checked first: nothing at all was written.
    expect(fs.existsSync(path.join(target, 'ok.txt'))).toBe(false);
    expect(fs.existsSync(path.resolve(target, '..', 'evil.txt'))).toBe(false);
  });

  it('refuses archives whose entries add up past the size limit', () => {
    const zip = writeZip(buildZip([{ name: 'a', data: 'x'.repeat(600) }, { name: 'b', data: 'y'.repeat(600) }]));
    const target = path.join(tmpDir(), 'out');
    expect(() => extractZip(zip, target, { maxBytes: 1000 })).toThrow(/entries add up to 1200 bytes, over the 1000-byte limit/);
    expect(fs.existsSync(target)).toBe(false);
  });

  it('refuses duplicate entries (which one wins would depend on the extractor)', () => {
    const target = path.join(tmpDir(), 'out');
    const zip = writeZip(buildZip([{ name: 'CoLA/train.tsv', data: 'good' }, { name: 'CoLA/dev.tsv', data: 'dev' }, { name: 'CoLA/train.tsv', data: 'evil' }]));
    expect(() => extractZip(zip, target)).toThrow(/entries 'CoLA\/train\.tsv' and 'CoLA\/train\.tsv' name the same path; refusing to extract/);
    const aliased = writeZip(buildZip([{ name: 'CoLA/train.tsv', data: 'good' }, { name: 'CoLA/./train.tsv', data: 'evil' }]));
    expect(() => extractZip(aliased, target)).toThrow(/name the same path/);
    expect(fs.existsSync(target)).toBe(false);
  });

  it('refuses symbolic links', () => {
    const zip = writeZip(buildZip([{ name: 'link', data: '/etc/passwd', method: 0, symlink: true }]));
    expect(() => extractZip(zip, tmpDir())).toThrow(/symbolic link/);
  });

  it('checks CRC, declared size and bounds', () => {
    const target = tmpDir();
    expect(() => extractZip(writeZip(buildZip([{ name: 'a', data: 'hello', crc: 1234 }])), target)).toThrow(/CRC-32 mismatch in 'a'/);
    // A header that understates the size: inflation stops at the declared size (no zip bomb).
    const bomb = Buffer.alloc(1 << 20);
    expect(() => extractZip(writeZip(buildZip([{ name: 'bomb', data: bomb, declaredSize: 1000 }])), target)).toThrow(/does not inflate to its declared 1000 bytes/);
    expect(() => extractZip(writeZip(buildZip([{ name: 'a', data: 'hello', method: 0, declaredSize: 9 }])), target)).toThrow(/'a' is 5 bytes, its header says 9/);
    const good = buildZip([{ name: 'a.txt', data: 'x'.repeat(1000) }]);
    // Truncated archive: the end record is gone.
    expect(() => ZipReader.open(writeZip(good.subarray(0, good.length - 10)))).toThrow(/no end-of-central-directory record/);
    // Central directory pointing past the end of the file.
    const lying = Buffer.from(good);
    lying.writeUInt32LE(0x7fffffff, lying.length - 6);
    expect(() => ZipReader.open(writeZip(lying))).toThrow(/central directory at 2147483647\+\d+ lies outside/);
    expect(() => ZipReader.open(writeZip(Buffer.from('not a zip at all, just text')))).toThrow(ModtuneError);
    expect(() => extractZip(writeZip(buildZip([{ name: 'a', data: 'x', method: 12 }])), target)).toThrow(/compression method 12/);
  });

  it('computes CRC-32 (IEEE)', () => {
    expect(crc32(Buffer.from('123456789'))).toBe(0xcbf43926);
    expect(crc32(new Uint8Array())).toBe(0);
  });

  it('maps safe names inside the target', () => {
    expect(safeEntryPath('/tmp/x', 'a/./b/c.txt')).toBe(path.resolve('/tmp/x/a/b/c.txt'));
    expect(() => safeEntryPath('/tmp/x', './')).toThrow(ModtuneError);
  });
});
