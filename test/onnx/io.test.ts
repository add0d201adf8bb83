import { describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { execFileSync } from 'node:child_process';
import onnxPkg from 'onnx-proto';
import { decodeModel, encodeModel, loadModel, saveModel } from '../../src/onnx/io.js';
import { tensorFloat32 } from '../../src/onnx/tensor.js';
import { TORCH113, FIXTURES, tmpDir } from '../helpers/paths.js';

const { onnx } = onnxPkg as unknown as { onnx: typeof import('onnx-proto').onnx };
const fixture = path.join(TORCH113, 'tiny_bert_torch113.onnx');
const expected = JSON.parse(fs.readFileSync(path.join(TORCH113, 'tiny_bert_torch113.expected.json'), 'utf8'));

async function runLogits(bytes: Uint8Array): Promise<number[]> {
  const s = await ort.InferenceSession.create(bytes);
  const feed = (k: string) => new ort.Tensor('int64', BigInt64Array.from(expected[k].flat().map(BigInt)), [2, 6]);
  const out = await s.run({ input_ids: feed('input_ids'), attention_mask: feed('attention_mask'), token_type_ids: feed('token_type_ids') });
  return Array.from(out[s.outputNames[0]!]!.data as Float32Array);
}

describe('onnx io', () => {
  it('round-trips the torch fixture and ORT reproduces the expected logits', async () => {
    const m = loadModel(fixture);
    const logits = await runLogits(encodeModel(m));
    const want = expected.expected_logits.flat();
    logits.forEach((v, i) => expect(v).toBeCloseTo(want[i], 5));
  });

  it('decodes every fixture', () => {
    for (const f of fs.readdirSync(FIXTURES).filter((x) => x.endsWith('.onnx'))) {
      const m = decodeModel(fs.readFileSync(path.join(FIXTURES, f)), { baseDir: FIXTURES });
      expect(m.graph.nodes.length, f).toBeGreaterThan(0);
    }
  });

  it('keeps raw tensor data as aligned views into the file buffer, not copies', () => {
    const bytes = fs.readFileSync(fixture);
    const m = decodeModel(bytes, { baseDir: TORCH113, ownsBuffer: true });
    let views = 0;
    for (const t of m.graph.initializers.values()) {
      if (t.raw.byteLength < 256 || t.dataType !== 1) continue; // float32; int64 may need an 8-byte shift the header cannot give
      expect(t.raw.buffer === bytes.buffer, t.name).toBe(true);
      expect(tensorFloat32(t).buffer === bytes.buffer, t.name).toBe(true);
      views++;
    }
    expect(views).toBeGreaterThan(10);
    // The aligned views still hold the right numbers: ORT agrees on the decoded-and-re-encoded model.
  });

  it('writes and reads external data, bit-identical', async () => {
    const dir = tmpDir();
    const m = loadModel(fixture);
    const files = saveModel(m, path.join(dir, 'model.onnx'), { externalData: true });
    expect(files.map((f) => path.basename(f))).toEqual(['model.onnx', 'model.onnx_data']);
    expect(fs.statSync(path.join(dir, 'model.onnx')).size).toBeLessThan(fs.statSync(fixture).size / 3);
    const back = loadModel(path.join(dir, 'model.onnx'));
    for (const [name, t] of m.graph.initializers) {
      expect(Array.from(tensorFloat32(back.graph.initializers.get(name)!))).toEqual(Array.from(tensorFloat32(t)));
    }
    const s = await ort.InferenceSession.create(path.join(dir, 'model.onnx'));
    expect(s.inputNames).toContain('input_ids');
  });

  it('refuses external data outside the model folder, beyond the file, or missing', () => {
    const dir = tmpDir();
    const m = loadModel(fixture);
    saveModel(m, path.join(dir, 'model.onnx'), { externalData: true });
    const text = fs.readFileSync(path.join(dir, 'model.onnx'));
    const evil = (loc: string) => Buffer.from(text.toString('latin1').replaceAll('model.onnx_data', loc), 'latin1');
    // Same byte length keeps the protobuf valid.
    fs.writeFileSync(path.join(dir, 'a.onnx'), evil('../../etc/passw'));
    expect(() => loadModel(path.join(dir, 'a.onnx'))).toThrow(/leaves its folder/);
    fs.writeFileSync(path.join(dir, 'b.onnx'), evil('missing.onnxdat'));
    expect(() => loadModel(path.join(dir, 'b.onnx'))).toThrow(/tensor '.*'.*not found/);
    fs.truncateSync(path.join(dir, 'model.onnx_data'), 1000);
    expect(() => loadModel(path.join(dir, 'model.onnx'))).toThrow(/tensor '.*'.*beyond the end/);
  });

  it('refuses external data that links out of the folder or is a FIFO or device, without blocking', () => {
    const dir = tmpDir();
    saveModel(loadModel(fixture), path.join(dir, 'model.onnx'), { externalData: true });
    const data = path.join(dir, 'model.onnx_data');
    fs.renameSync(data, path.join(dir, 'real.bin'));
    fs.symlinkSync('/dev/zero', data);
    expect(() => loadModel(path.join(dir, 'model.onnx'))).toThrow(/links outside its folder/);
    fs.unlinkSync(data);
    execFileSync('mkfifo', [data]);
    expect(() => loadModel(path.join(dir, 'model.onnx'))).toThrow(/is a FIFO, expected a regular file; refused/);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('parses external-data offset and length strictly, as onnx does', () => {
    const dir = tmpDir();
    saveModel(loadModel(fixture), path.join(dir, 'model.onnx'), { externalData: true });
    const withField = (key: string, value: string): string => {
      const proto = onnx.ModelProto.decode(fs.readFileSync(path.join(dir, 'model.onnx')));
      const t = proto.graph!.initializer!.find((x) => x.dataLocation === 1)!;
      const entries = t.externalData!.filter((e) => e.key !== key);
      t.externalData = [...entries, { key, value }];
      const file = path.join(dir, `${key}-${value.replace(/\W/g, '_')}.onnx`);
      fs.writeFileSync(file, onnx.ModelProto.encode(proto).finish());
      return file;
    };
    for (const bad of ['1e1', '0x10', ' 4', '-4', '4.0', '']) {
      expect(() => loadModel(withField('offset', bad)), bad).toThrow(/external data offset .* is not a non-negative decimal integer/);
    }
    expect(() => loadModel(withField('length', '1e3'))).toThrow(/external data length "1e3" is not a non-negative decimal integer/);
    expect(() => loadModel(withField('offset', '0'))).not.toThrow(/decimal/);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('rejects empty, truncated and non-ONNX files with one-line errors naming the file', () => {
    const dir = tmpDir();
    fs.writeFileSync(path.join(dir, 'empty.onnx'), '');
    expect(() => loadModel(path.join(dir, 'empty.onnx'))).toThrow(/empty\.onnx: file is empty/);
    fs.writeFileSync(path.join(dir, 'text.onnx'), 'hello, this is not a model at all');
    expect(() => loadModel(path.join(dir, 'text.onnx'))).toThrow(/text\.onnx: not (a valid )?(an )?ONNX model/);
    const bytes = fs.readFileSync(fixture);
    fs.writeFileSync(path.join(dir, 'trunc.onnx'), bytes.subarray(0, bytes.length >> 1));
    expect(() => loadModel(path.join(dir, 'trunc.onnx'))).toThrow(/trunc\.onnx: not/);
    expect(() => loadModel(path.join(dir, 'nope.onnx'))).toThrow(/nope\.onnx: cannot read/);
  });
});

describe('decodeModel without owning the buffer', () => {
  it('leaves the caller\'s bytes untouched, so they decode again identically', () => {
    const bytes = fs.readFileSync(fixture);
    const copy = Buffer.from(bytes);
    const a = decodeModel(bytes, { baseDir: TORCH113 });
    expect(Buffer.compare(bytes, copy)).toBe(0);
    const b = decodeModel(bytes, { baseDir: TORCH113 });
    for (const [name, t] of a.graph.initializers) {
      if (t.dataType === 1) expect(Array.from(tensorFloat32(b.graph.initializers.get(name)!))).toEqual(Array.from(tensorFloat32(t)));
    }
  });
});
