/**
 * The dropout masks the native backend feeds its training models (src/artifacts/native/
 * dropout-inputs.ts turned their Dropout nodes into `dropout_mask` inputs). Drawn in WebAssembly
 * SIMD (dropout-masks.wat), keyed: the masks of a forward pass follow from the run's seed, the
 * update, the micro-batch and the input's name alone, so a resumed run draws exactly the masks an
 * uninterrupted one would have, and a model whose lower dropouts were removed (`--cache-frozen`)
 * draws the same masks above them as the full model.
 */
import { createHash } from 'node:crypto';
import { DROPOUT_MASKS_WASM } from './dropout-masks-wasm.js';

/** Output bytes per call of the kernel. */
const CHUNK = 65536;
const OUTPUT_OFFSET = 64;

interface Kernel {
  bernoulli(n: number, threshold: number): void;
  state: Uint32Array;
  output: Uint8Array;
}

let kernel: Kernel | undefined;
function getKernel(): Kernel {
  if (!kernel) {
    const instance = new WebAssembly.Instance(new WebAssembly.Module(Buffer.from(DROPOUT_MASKS_WASM, 'base64')));
    const e = instance.exports as unknown as { bernoulli: Kernel['bernoulli']; memory: WebAssembly.Memory };
    kernel = { bernoulli: e.bernoulli, state: new Uint32Array(e.memory.buffer, 0, 16), output: new Uint8Array(e.memory.buffer, OUTPUT_OFFSET, CHUNK) };
  }
  return kernel;
}

/**
 * Fill `out` with 0/1 bytes, each 1 (kept) with probability 1 − ratio, from the stream that
 * `seed` and `key` name: the same pair always gives the same bytes.
 */
export function drawDropoutMask(out: Uint8Array, ratio: number, seed: number, key: string): void {
  if (!(ratio >= 0 && ratio < 1)) throw new RangeError(`dropout ratio ${ratio} is outside [0, 1)`);
  const k = getKernel();
  // 512 bits of state from a hash of the key: distinct keys give unrelated streams (a 32-bit seed
  // would repeat within a long run's hundreds of thousands of masks).
  const digest = createHash('sha512').update(`modtune dropout\0${seed}\0${key}`).digest();
  for (let i = 0; i < 16; i++) k.state[i] = digest.readUInt32LE(4 * i);
  // A lane whose four words are all zero would stay zero forever.
  for (let lane = 0; lane < 4; lane++) {
    if (k.state[lane]! === 0 && k.state[4 + lane]! === 0 && k.state[8 + lane]! === 0 && k.state[12 + lane]! === 0) k.state[lane] = 1;
  }
  const threshold = Math.min(Math.round(ratio * 2 ** 32), 2 ** 32 - 1) | 0;
  for (let off = 0; off < out.length; off += CHUNK) {
    const n = Math.min(CHUNK, out.length - off);
    k.bernoulli(n, threshold);
    out.set(k.output.subarray(0, n), off);
  }
}
