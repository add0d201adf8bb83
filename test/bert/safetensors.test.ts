import { describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { floatToBfloat16, parseSafetensors, readSafetensors, readSafetensorsIndex, writeSafetensors } from '../../src/bert/safetensors.js';
import { loadWeights } from '../../src/bert/weights.js';
import { bfloat16ToFloat, floatToHalf, halfToFloat } from '../../src/onnx/dtype.js';
import { tmpDir } from '../helpers/paths.js';

/** Assemble a safetensors file by hand: header object, data bytes, optional forged header length. */
function craft(header: unknown, data: Uint8Array = new Uint8Array(0), headerLength?: bigint): Uint8Array {
  const json = Buffer.from(typeof header === 'string' ? header : JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, headerLength ?? BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

const f32bytes = (v: number[]) => new Uint8Array(new Float32Array(v).buffer);

describe('safetensors', () => {
  it('round-trips F32, F16 and BF16 tensors and metadata through a file', () => {
    const dir = tmpDir();
    const file = path.join(dir, 'w.safetensors');
    const a = new Float32Array([1.5, -2.25, 3e-3, 0, 65504, -1e-8]);
    const b = new Float32Array(24).map((_, i) => Math.sin(i) * 100);
    writeSafetensors(file, {
      a: { shape: [2, 3], data: a },
      half: { shape: [2, 3], data: a, dtype: 'F16' },
      brain: { shape: [4, 6], data: b, dtype: 'BF16' },
      scalar: { shape: [], data: new Float32Array([7]) },
      empty: { shape: [0, 4], data: new Float32Array(0) },
    }, { format: 'pt', note: 'x' });
    const bytes = fs.readFileSync(file);
    const headerLen = Number(bytes.readBigUInt64LE(0));
    expect((8 + headerLen) % 8).toBe(0); // data section 8-byte aligned
    const back = readSafetensors(file);
    expect(back.metadata).toEqual({ format: 'pt', note: 'x' });
    expect([...back.tensors.keys()]).toEqual(['a', 'half', 'brain', 'scalar', 'empty']);
    expect(back.tensors.get('a')).toMatchObject({ dtype: 'F32', shape: [2, 3] });
    expect(Array.from(back.tensors.get('a')!.data)).toEqual(Array.from(a));
    expect(back.tensors.get('half')!.dtype).toBe('F16');
    expect(Array.from(back.tensors.get('half')!.data)).toEqual(Array.from(a, (v) => halfToFloat(floatToHalf(v))));
    const brain = back.tensors.get('brain')!.data;
    for (let i = 0; i < b.length; i++) expect(Math.abs(brain[i]! - b[i]!)).toBeLessThanOrEqual(Math.abs(b[i]!) / 128);
    // bf16 keeps the top 16 bits of a float32, rounding to nearest even.
    expect(floatToBfloat16(1.5)).toBe(0x3fc0);
    expect(bfloat16ToFloat(floatToBfloat16(1 + 2 ** -8))).toBe(1);
    expect(bfloat16ToFloat(floatToBfloat16(1 + 3 * 2 ** -8))).toBe(1 + 2 ** -6);
    expect(Array.from(back.tensors.get('scalar')!.data)).toEqual([7]);
    expect(back.tensors.get('empty')!.shape).toEqual([0, 4]);
    // In-memory parse agrees, and F32 data are views into the buffer.
    const mem = parseSafetensors(bytes, 'w.safetensors');
    expect(Array.from(mem.tensors.get('a')!.data)).toEqual(Array.from(a));
    expect(mem.tensors.get('a')!.data.buffer).toBe(bytes.buffer);
    expect(fs.readdirSync(dir)).toEqual(['w.safetensors']); // no temp file left behind
  });

  it('reads a header padded with spaces and unaligned F32 data (copied)', () => {
    const bytes = craft('{"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}   ', f32bytes([1, 2]));
    // A header of odd length makes the data start unaligned.
    const odd = craft('{"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}} ', f32bytes([1, 2]));
    expect(Array.from(parseSafetensors(bytes, 'p').tensors.get('t')!.data)).toEqual([1, 2]);
    expect(Array.from(parseSafetensors(odd, 'o').tensors.get('t')!.data)).toEqual([1, 2]);
  });

  const corrupt: Array<[string, Uint8Array, RegExp]> = [
    ['too short', new Uint8Array(5), /bad\.st: 5 bytes is too short/],
    ['header length beyond the file', craft({}, new Uint8Array(0), 1000n), /bad\.st: safetensors header length 1000 exceeds the file size/],
    ['header not JSON', craft('{"t": nope}'), /bad\.st: safetensors header is not valid JSON/],
    ['header not an object', craft('[1,2]'), /bad\.st: safetensors header should be a JSON object/],
    ['offsets beyond the data', craft({ t: { dtype: 'F32', shape: [4], data_offsets: [0, 16] } }, f32bytes([1, 2])), /bad\.st: tensor 't': data_offsets \[0, 16\) lie outside the data section \(8 bytes\)/],
    ['begin after end', craft({ t: { dtype: 'F32', shape: [0], data_offsets: [8, 4] } }, f32bytes([1, 2])), /tensor 't': data_offsets \[8, 4\) lie outside/],
    ['negative offset', craft({ t: { dtype: 'F32', shape: [1], data_offsets: [-4, 0] } }, f32bytes([1])), /tensor 't': data_offsets should be \[begin, end\] non-negative integers/],
    ['byte length vs dtype and shape', craft({ t: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, f32bytes([1, 2])), /tensor 't': 8 bytes of data, but F32 \[3\] needs 12/],
    ['F16 length', craft({ t: { dtype: 'F16', shape: [3], data_offsets: [0, 8] } }, f32bytes([1, 2])), /tensor 't': 8 bytes of data, but F16 \[3\] needs 6/],
    ['overlap', craft({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] } }, f32bytes([1, 2, 3])), /tensors 'a' \[0, 8\) and 'b' \[4, 12\) overlap/],
    ['unknown dtype', craft({ t: { dtype: 'F33', shape: [1], data_offsets: [0, 4] } }, f32bytes([1])), /bad\.st: tensor 't': unknown dtype "F33"/],
    ['prototype dtype', craft({ t: { dtype: 'toString', shape: [1], data_offsets: [0, 4] } }, f32bytes([1])), /tensor 't': unknown dtype "toString"/],
    ['integer dtype', craft({ ids: { dtype: 'I64', shape: [2], data_offsets: [0, 16] } }, new Uint8Array(16)), /bad\.st: tensor 'ids' has dtype I64; only F32, F16, BF16 tensors can be loaded/],
    ['F64', craft({ d: { dtype: 'F64', shape: [1], data_offsets: [0, 8] } }, new Uint8Array(8)), /bad\.st: tensor 'd' has dtype F64/],
    ['bad shape', craft({ t: { dtype: 'F32', shape: [1.5], data_offsets: [0, 4] } }, f32bytes([1])), /tensor 't': shape should be a list of non-negative integers/],
    ['metadata not strings', craft({ __metadata__: { n: 1 } }), /safetensors metadata 'n' should be a string/],
  ];

  for (const [what, bytes, message] of corrupt) {
    it(`refuses a corrupt file: ${what}`, () => {
      const dir = tmpDir();
      const file = path.join(dir, 'bad.st');
      fs.writeFileSync(file, bytes);
      expect(() => readSafetensors(file)).toThrow(message);
      expect(() => parseSafetensors(bytes, file)).toThrow(message);
      // One line, naming the file.
      try { readSafetensors(file); } catch (e) { expect((e as Error).message).not.toContain('\n'); expect((e as Error).name).toBe('ModtuneError'); }
    });
  }

  it('skips ignored tensors (integer buffers) but still bounds-checks them', () => {
    const good = craft({ ids: { dtype: 'I64', shape: [2], data_offsets: [0, 16] }, w: { dtype: 'F32', shape: [1], data_offsets: [16, 20] } }, new Uint8Array(20));
    const st = parseSafetensors(good, 'g', { ignore: (n) => n === 'ids' });
    expect([...st.tensors.keys()]).toEqual(['w']);
    const bad = craft({ ids: { dtype: 'I64', shape: [2], data_offsets: [0, 24] } }, new Uint8Array(16));
    expect(() => parseSafetensors(bad, 'b', { ignore: () => true })).toThrow(/outside the data section/);
  });

  it('refuses a missing file or a pickle checkpoint with the path in the message', () => {
    expect(() => readSafetensors('/nonexistent/x.safetensors')).toThrow(/\/nonexistent\/x\.safetensors: cannot open safetensors file \(ENOENT\)/);
    expect(() => loadWeights('/nonexistent/x.safetensors')).toThrow(/\/nonexistent\/x\.safetensors: weights not found/);
    const dir = tmpDir();
    fs.writeFileSync(path.join(dir, 'pytorch_model.bin'), 'PK');
    expect(() => loadWeights(path.join(dir, 'pytorch_model.bin'))).toThrow(/pytorch_model\.bin: only safetensors checkpoints can be read/);
    expect(() => loadWeights(dir)).toThrow(/folder has neither model\.safetensors nor model\.safetensors\.index\.json/);
  });

  describe('sharded checkpoints', () => {
    function writeShards(dir: string, weightMap?: Record<string, string>) {
      writeSafetensors(path.join(dir, 'model-00001-of-00002.safetensors'), { a: { shape: [2], data: new Float32Array([1, 2]) }, b: { shape: [1], data: new Float32Array([3]) } });
      writeSafetensors(path.join(dir, 'model-00002-of-00002.safetensors'), { c: { shape: [1, 2], data: new Float32Array([4, 5]) } });
      fs.writeFileSync(path.join(dir, 'model.safetensors.index.json'), JSON.stringify({
        metadata: { total_size: 20 },
        weight_map: weightMap ?? { a: 'model-00001-of-00002.safetensors', b: 'model-00001-of-00002.safetensors', c: 'model-00002-of-00002.safetensors' },
      }));
      return path.join(dir, 'model.safetensors.index.json');
    }

    it('loads every shard an index lists, from the index or its folder', () => {
      const dir = tmpDir();
      const index = writeShards(dir);
      const st = readSafetensorsIndex(index);
      expect(st.metadata).toEqual({ total_size: '20' });
      expect([...st.tensors.keys()].sort()).toEqual(['a', 'b', 'c']);
      expect(Array.from(st.tensors.get('c')!.data)).toEqual([4, 5]);
      const viaFolder = loadWeights(dir);
      expect(viaFolder.get('c')).toEqual({ shape: [1, 2], data: new Float32Array([4, 5]) });
    });

    it('refuses an index naming the wrong shard, a shard outside the folder, or duplicates', () => {
      const dir = tmpDir();
      const wrong = writeShards(dir, { a: 'model-00002-of-00002.safetensors', c: 'model-00002-of-00002.safetensors' });
      expect(() => readSafetensorsIndex(wrong)).toThrow(/model-00002-of-00002\.safetensors: tensor 'a' is listed in model\.safetensors\.index\.json but not in this shard/);
      const outside = writeShards(tmpDir(), { a: '../model-00001-of-00002.safetensors' });
      expect(() => readSafetensorsIndex(outside)).toThrow(/tensor 'a': shard "\.\.\/model-00001-of-00002\.safetensors" should be a file name in the index's folder/);
      const dupDir = tmpDir();
      writeShards(dupDir);
      writeSafetensors(path.join(dupDir, 'model-00002-of-00002.safetensors'), { a: { shape: [2], data: new Float32Array([9, 9]) }, c: { shape: [1, 2], data: new Float32Array([4, 5]) } });
      expect(() => readSafetensorsIndex(path.join(dupDir, 'model.safetensors.index.json'))).toThrow(/tensor 'a' also appears in another shard/);
      fs.writeFileSync(path.join(dupDir, 'bad.index.json'), '{"weight_map": 3}');
      expect(() => readSafetensorsIndex(path.join(dupDir, 'bad.index.json'))).toThrow(/bad\.index\.json: field 'weight_map' should be an object/);
    });
  });
});
