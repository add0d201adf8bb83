import { describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Builder } from 'flatbuffers';
import {
  Checkpoint, CkptTensor, ckptFloat32, ckptTensorF32, emptyProperties, encodeCheckpoint, readCheckpoint, writeCheckpoint,
} from '../../../src/artifacts/ort/checkpoint.js';
import { createTrainingSession } from '../../../src/runtime/ort-training.js';
import { DataType } from '../../../src/onnx/dtype.js';
import { ORT_REFERENCE, tmpDir } from '../../helpers/paths.js';

const ref = (f: string) => path.join(ORT_REFERENCE, f);

/** ORT's test data files: a name line, then the values (a bracketed list or one number). */
function readRefValues(file: string): { name: string; values: number[] } {
  const [name, body] = fs.readFileSync(ref(file), 'utf8').split('\n', 2) as [string, string];
  const values = body.trim().startsWith('[') ? (JSON.parse(body) as number[]) : [Number(body)];
  return { name, values };
}

function sample(): Checkpoint {
  return {
    trainable: [ckptTensorF32('a.weight', [2, 3], new Float32Array([1, 2, 3, 4, 5, 6])), ckptTensorF32('a.bias', [3], new Float32Array([-1, 0.5, 7]))],
    frozen: [
      ckptTensorF32('emb', [4], new Float32Array([9, 8, 7, 6])),
      { name: 'ids', dims: [2], dataType: DataType.INT64, data: new Uint8Array(new BigInt64Array([5n, -3n]).buffer) },
    ],
    isNominal: false,
    optimizerGroups: [{
      name: 'group0', step: 12, initialLearningRate: 0.25,
      states: [{ param: 'a.bias', momentums: [ckptTensorF32('momentum0', [3], new Float32Array([0.1, 0.2, 0.3])), ckptTensorF32('momentum1', [3], new Float32Array([1, 2, 3]))] }],
    }],
    properties: { ints: { epoch: 3, big: 2 ** 40 }, floats: { best: 0.5 }, strings: { task: 'sst2', empty: '' } },
  };
}

function plain(c: Checkpoint) {
  const t = (x: CkptTensor) => ({ name: x.name, dims: x.dims, dataType: x.dataType, data: Array.from(x.data) });
  return {
    ...c,
    trainable: c.trainable.map(t),
    frozen: c.frozen.map(t),
    optimizerGroups: c.optimizerGroups.map((g) => ({ ...g, states: g.states.map((s) => ({ ...s, momentums: s.momentums.map(t) })) })),
  };
}

describe('ORT checkpoint (ODTC v2)', () => {
  it('reads ORT\'s reference checkpoints', () => {
    const c = readCheckpoint(ref('checkpoint.ckpt'));
    expect(c.isNominal).toBe(false);
    expect(c.trainable.map((t) => [t.name, t.dims])).toEqual([
      ['fc1.bias', [500]], ['fc1.weight', [500, 784]], ['fc2.bias', [10]], ['fc2.weight', [10, 500]],
    ]);
    expect(c.frozen).toEqual([]);
    expect(c.optimizerGroups).toEqual([]);

    const withFrozen = readCheckpoint(ref('ort_format/checkpoint'));
    expect(withFrozen.trainable.map((t) => t.name)).toEqual(['fc2.bias', 'fc2.weight']);
    expect(withFrozen.frozen.map((t) => t.name)).toEqual(['fc1.bias', 'fc1.weight']);

    const nominal = readCheckpoint(ref('nominal_checkpoint'));
    expect(nominal.isNominal).toBe(true);
    expect(nominal.trainable.map((t) => t.name)).toEqual(['fc1.weight', 'fc1.bias', 'fc2.weight', 'fc2.bias']);
    for (const t of nominal.trainable) expect(t.data.byteLength).toBe(0);
    // A nominal checkpoint survives our round trip with its flag.
    expect(readCheckpoint(encodeCheckpoint(nominal)).isNominal).toBe(true);
  });

  it('round-trips every field', () => {
    const c = sample();
    const bytes = encodeCheckpoint(c);
    const back = readCheckpoint(bytes);
    expect(plain(back)).toEqual(plain(c));
    // raw data sits at multiples of 8 from the start of the file, so views of a loaded file need no copy
    for (const t of back.trainable) expect((t.data.byteOffset - bytes.byteOffset) % 8).toBe(0);
  });

  it('our re-written reference checkpoint reproduces ORT\'s expected losses (train, optimizer, train)', async () => {
    const original = readCheckpoint(ref('checkpoint.ckpt'));
    const dir = tmpDir();
    const file = path.join(dir, 'rewritten.ckpt');
    expect(writeCheckpoint(original, file)).toEqual([file]);
    const rewritten = fs.readFileSync(file);
    expect(Buffer.compare(rewritten, fs.readFileSync(ref('checkpoint.ckpt')))).not.toBe(0); // really our bytes, not a copy
    for (const [i, t] of readCheckpoint(rewritten).trainable.entries()) {
      expect(Buffer.compare(Buffer.from(t.data), Buffer.from(original.trainable[i]!.data)), t.name).toBe(0);
    }

    const session = await createTrainingSession({
      checkpoint: rewritten,
      trainModel: fs.readFileSync(ref('training_model.onnx')),
      evalModel: fs.readFileSync(ref('eval_model.onnx')),
      optimizerModel: fs.readFileSync(ref('adamw.onnx')),
    });
    const input = readRefValues('input-0.in');
    expect(input.name).toBe('input-0');
    expect(input.values).toHaveLength(2 * 784);
    const feeds = {
      'input-0': new session.ort.Tensor('float32', Float32Array.from(input.values), [2, 784]),
      labels: new session.ort.Tensor('int32', Int32Array.from([1, 1]), [2]), // as in ORT's own tests of these files
    };
    const lossName = session.trainingOutputNames[0]!;
    const loss1 = (await session.runTrainStep(feeds))[lossName]!.data as Float32Array;
    await session.runOptimizerStep();
    const loss2 = (await session.runTrainStep(feeds))[lossName]!.data as Float32Array;
    expect(loss1[0]).toBeCloseTo(readRefValues('loss_1.out').values[0]!, 6);
    expect(loss2[0]).toBeCloseTo(readRefValues('loss_2.out').values[0]!, 6);
    const evalLoss = (await session.runEvalStep(feeds))[session.evalOutputNames[0]!]!.data as Float32Array;
    expect(Number.isFinite(evalLoss[0])).toBe(true);
    await session.release();
  });

  it('the training runtime loads the nominal checkpoint after our round trip', async () => {
    const nominal = encodeCheckpoint(readCheckpoint(ref('nominal_checkpoint')));
    const session = await createTrainingSession({ checkpoint: nominal, trainModel: fs.readFileSync(ref('training_model.onnx')) });
    expect(session.trainingInputNames).toEqual(['input-0', 'labels']);
    await session.release();
  });

  it('moves tensor data to <path>.data at the threshold and reads it back', () => {
    const dir = tmpDir();
    const file = path.join(dir, 'big.ckpt');
    const c = sample();
    expect(writeCheckpoint(c, file, { externalDataThreshold: 16 })).toEqual([file, `${file}.data`]);
    const main = fs.readFileSync(file);
    const data = fs.readFileSync(`${file}.data`);
    // every tensor's bytes live in the side file: 24 + 12 + 16 + 16 + 12 + 12 bytes, plus alignment padding
    expect(data.byteLength).toBeGreaterThanOrEqual(92);
    expect(main.includes(Buffer.from(new Float32Array([9, 8, 7, 6]).buffer))).toBe(false);
    expect(plain(readCheckpoint(file))).toEqual(plain(c));
    expect(plain(readCheckpoint(main, { externalData: data }))).toEqual(plain(c));
    expect(() => readCheckpoint(main)).toThrow(/external data file; pass its bytes or path/);
    // 64-bit tensors start at a multiple of 8 in the side file, others at a multiple of 4
    const back = readCheckpoint(file);
    expect(back.frozen[1]!.data.byteOffset % 8).toBe(0);
    // Truncated side file: the tensor that no longer fits is named.
    expect(() => readCheckpoint(main, { externalData: data.subarray(0, 40) })).toThrow(/tensor '.*': external data \[\d+, \d+\) lies beyond the end of the 40-byte data file/);
    // A later small save removes the stale side file.
    expect(writeCheckpoint(c, file)).toEqual([file]);
    expect(fs.existsSync(`${file}.data`)).toBe(false);
  });

  it('converts values and refuses what ORT would refuse, naming the tensor', () => {
    const c = sample();
    expect(Array.from(ckptFloat32(c.trainable[1]!))).toEqual([-1, 0.5, 7]);
    expect(() => ckptFloat32(c.frozen[1]!)).toThrow(/'ids' is INT64, expected FLOAT/);
    const bad = sample();
    bad.trainable[0] = { ...bad.trainable[0]!, dims: [2, 2] };
    expect(() => encodeCheckpoint(bad)).toThrow(/tensor 'a.weight' has 24 bytes, shape \[2, 2\] of FLOAT needs 16/);
    const dup = sample();
    dup.frozen.push(ckptTensorF32('a.bias', [1], new Float32Array(1)));
    expect(() => encodeCheckpoint(dup)).toThrow(/'a.bias' is listed twice/);
    const str = sample();
    str.frozen.push({ name: 's', dims: [1], dataType: DataType.STRING, data: new Uint8Array(0) });
    expect(() => encodeCheckpoint(str)).toThrow(/'s' has data type STRING/);
  });
});

describe('ORT checkpoint reader on untrusted bytes', () => {
  const good = encodeCheckpoint(sample());

  it('rejects wrong identifiers, versions and empty files with one-line errors', () => {
    expect(() => readCheckpoint(new Uint8Array(0), { label: 'x.ckpt' })).toThrow(/^x\.ckpt: .*lie outside the 0-byte buffer/);
    const id = Uint8Array.from(good);
    id.set([0x4f, 0x52, 0x54, 0x4d], 4); // 'ORTM': an ORT-format model, not a checkpoint
    expect(() => readCheckpoint(id, { label: 'x.ckpt' })).toThrow("x.ckpt: file identifier is 'ORTM', expected 'ODTC' (not an ORT training checkpoint)");
    expect(() => readCheckpoint(fs.readFileSync(ref('eval_model.onnx')))).toThrow(/^<checkpoint bytes>: file identifier is '.{4}', expected 'ODTC'/);
    expect(() => readCheckpoint(Uint8Array.from([1, 2, 3, 4, 0, 1, 2, 3]))).toThrow(/file identifier is binary bytes, expected 'ODTC'/);
    expect(() => readCheckpoint(handBuilt({ version: 1 }))).toThrow(/checkpoint version 1 is not supported, expected 2/);
  });

  it('never reads outside the buffer, whatever byte is damaged', () => {
    // Truncation at every length and a sweep of single-byte corruptions: the reader either returns
    // a checkpoint or throws a ModtuneError; it never throws anything else or hangs.
    for (let len = 0; len < good.byteLength; len += 7) {
      expect(() => readCheckpoint(good.subarray(0, len))).toThrow(/outside|identifier|version|missing|bytes of data|no dims|neither raw_data|UTF-8|vtable|overruns|negative/);
    }
    let failures = 0;
    const wrongKind: string[] = [];
    const b = Uint8Array.from(good);
    for (let pos = 0; pos < good.byteLength; pos++) {
      for (const v of [0x00, 0xff]) {
        b[pos] = v;
        try {
          readCheckpoint(b);
        } catch (e) {
          failures++;
          if ((e as Error).name !== 'ModtuneError' || (e as Error).message.includes('\n')) wrongKind.push(`byte ${pos} = ${v}: ${String(e)}`);
        }
        b[pos] = good[pos]!;
      }
    }
    expect(wrongKind).toEqual([]);
    expect(failures).toBeGreaterThan(50);
  });

  it('checks vector lengths, offsets and raw_data sizes', () => {
    expect(() => readCheckpoint(handBuilt({ rawBytes: 12, dims: [2, 3] }))).toThrow(/tensor 'p' has 12 bytes of data, shape \[2, 3\] of FLOAT needs 24/);
    expect(() => readCheckpoint(handBuilt({ dims: [-1] }))).toThrow(/tensor 'p' has a negative dimension -1/);
    expect(() => readCheckpoint(handBuilt({ dataType: 99 }))).toThrow(/tensor 'p' has data type dtype#99/);
    expect(() => readCheckpoint(handBuilt({ noDims: true }))).toThrow(/tensor 'p' has no dims/);
    expect(() => readCheckpoint(handBuilt({ noName: true }))).toThrow(/requires_grad_params\[0\]\.name is missing/);
    expect(() => readCheckpoint(handBuilt({ rawBytes: 0, externalOffset: 0 }))).toThrow(/has 0 bytes of data/);
    expect(() => readCheckpoint(handBuilt({ noRaw: true, externalOffset: 4 }))).toThrow(/points into external data, but the checkpoint does not declare has_external_data/);
    expect(() => readCheckpoint(handBuilt({ noRaw: true }))).toThrow(/has neither raw_data nor an external data offset/);
    // A vector whose length field claims more elements than the file holds.
    const b = handBuilt({});
    const lengthAt = findUint32(b, 6 * 4); // raw_data length of the [2,3] float tensor
    new DataView(b.buffer, b.byteOffset).setUint32(lengthAt, 0x7fffffff, true);
    expect(() => readCheckpoint(b, { label: 'evil.ckpt' })).toThrow(/^evil\.ckpt: .*raw_data \(2147483647 elements\): bytes \[\d+, \d+\) lie outside the \d+-byte buffer/);
  });
});

/** Locate a little-endian uint32 value (first occurrence). */
function findUint32(b: Uint8Array, value: number): number {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  for (let i = 0; i + 4 <= b.byteLength; i++) if (dv.getUint32(i, true) === value) return i;
  throw new Error(`value ${value} not found`);
}

/**
 * A checkpoint with one trainable tensor 'p', built field by field so that each can be wrong in
 * ways our writer refuses to produce.
 */
function handBuilt(o: {
  version?: number; dims?: number[]; rawBytes?: number; dataType?: number; noDims?: boolean; noName?: boolean; noRaw?: boolean; externalOffset?: number;
}): Uint8Array {
  const b = new Builder(256);
  const name = b.createString('p');
  let dims = 0;
  if (!o.noDims) {
    const d = o.dims ?? [2, 3];
    b.startVector(8, d.length, 8);
    for (let i = d.length - 1; i >= 0; i--) b.addInt64(BigInt(d[i]!));
    dims = b.endVector();
  }
  const raw = o.noRaw ? 0 : b.createByteVector(new Uint8Array(o.rawBytes ?? 24));
  b.startObject(7);
  if (!o.noName) b.addFieldOffset(0, name, 0);
  if (dims) b.addFieldOffset(2, dims, 0);
  b.addFieldInt32(3, o.dataType ?? DataType.FLOAT, 0);
  if (raw) b.addFieldOffset(4, raw, 0);
  if (o.externalOffset !== undefined) b.addFieldInt64(6, BigInt(o.externalOffset), BigInt(-1));
  const tensor = b.endObject();
  b.startVector(4, 1, 4);
  b.addOffset(tensor);
  const list = b.endVector();
  b.startObject(4);
  b.addFieldOffset(0, list, 0);
  const module = b.endObject();
  b.startObject(4);
  b.addFieldInt32(0, o.version ?? 2, 0);
  b.addFieldOffset(1, module, 0);
  b.finish(b.endObject(), 'ODTC');
  return b.asUint8Array().slice();
}

// Keep the helper honest: a well-formed hand-built file reads back.
describe('hand-built checkpoint helper', () => {
  it('produces a readable checkpoint by default', () => {
    const c = readCheckpoint(handBuilt({}));
    expect(c.trainable.map((t) => [t.name, t.dims, t.data.byteLength])).toEqual([['p', [2, 3], 24]]);
    expect(c.properties).toEqual(emptyProperties());
  });
});
