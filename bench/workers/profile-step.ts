/**
 * Where a native train step's time goes: runs a few steps of one artifacts folder with ONNX
 * Runtime's profiler on and prints kernel time per op type and per graph region (forward, backward,
 * optimizer), from the profile of the steps after the first (warm-up) one.
 *   node --import tsx bench/workers/profile-step.ts <artifacts-dir> <mode: train|gradient|infer> <batch> <seq> <steps> [threads]
 */
import * as ort from 'onnxruntime-node';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { readSafetensors } from '../../src/bert/safetensors.js';
import { drawDropoutMask } from '../../src/train/backends/dropout-masks.js';

const [dir, mode, batchArg, seqArg, stepsArg, threadsArg] = process.argv.slice(2);
const batch = Number(batchArg), seq = Number(seqArg), steps = Number(stepsArg);
const manifest = JSON.parse(fs.readFileSync(path.join(dir!, 'manifest.json'), 'utf8'));
const prefix = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'modtune-profile-')), 'step');
const options: ort.InferenceSession.SessionOptions = {
  graphOptimizationLevel: 'all', intraOpNumThreads: Number(threadsArg ?? 2), interOpNumThreads: 1, enableMemPattern: false, enableProfiling: true, profileFilePrefix: prefix,
};
const spec = manifest.native[mode === 'infer' ? 'infer' : mode === 'gradient' ? 'gradient' : 'trainStep'];
const file = path.join(dir!, spec.file);
const session = await ort.InferenceSession.create(file, options);

const ids = BigInt64Array.from({ length: batch * seq }, (_, i) => BigInt(100 + ((i * 7919) % 900)));
const feeds: Record<string, ort.Tensor> = {
  input_ids: new ort.Tensor('int64', ids, [batch, seq]),
  attention_mask: new ort.Tensor('int64', new BigInt64Array(batch * seq).fill(1n), [batch, seq]),
  token_type_ids: new ort.Tensor('int64', new BigInt64Array(batch * seq), [batch, seq]),
};
if (mode !== 'infer') {
  feeds.labels = new ort.Tensor('int64', BigInt64Array.from({ length: batch }, (_, i) => BigInt(i % 2)), [batch]);
  feeds.learning_rate = new ort.Tensor('float32', new Float32Array([2e-5]), []);
  feeds.grad_scale = new ort.Tensor('float32', new Float32Array([1]), []);
  feeds.step = new ort.Tensor('float32', new Float32Array([1]), []);
  const init = readSafetensors(path.join(dir!, manifest.initialValues));
  for (const p of manifest.parameters) feeds[p.name] = new ort.Tensor('float32', init.tensors.get(p.name)!.data, p.shape);
  for (const i of spec.inputs) {
    if (!feeds[i.name] && i.parameter) feeds[i.name] = new ort.Tensor('float32', new Float32Array(manifest.parameters.find((p: { name: string }) => p.name === i.parameter).size), i.shape);
    if (!feeds[i.name] && i.flat) feeds[i.name] = new ort.Tensor('float32', new Float32Array(i.shape[0]), i.shape);
    if (i.role === 'dropout_mask') {
      const dims = i.shape.map((d: number | string) => (d === 'batch' ? batch : d === 'sequence' ? seq : d));
      const m = new Uint8Array(dims.reduce((a: number, b: number) => a * b, 1));
      drawDropoutMask(m, i.ratio, 0, i.name);
      feeds[i.name] = new ort.Tensor('bool', m, dims);
    }
  }
}
const wall: number[] = [];
for (let s = 0; s < steps; s++) {
  const t = performance.now();
  await session.run(feeds);
  wall.push(performance.now() - t);
}
session.endProfiling();
await session.release();
// onnxruntime-node writes <prefix>_<timestamp>.json and does not return the name.
const profileFile = fs.readdirSync(path.dirname(prefix)).filter((f) => f.endsWith('.json')).map((f) => path.join(path.dirname(prefix), f))[0]!;

interface Ev { cat: string; name: string; dur: number; ts: number; args?: { op_name?: string } }
const events: Ev[] = JSON.parse(fs.readFileSync(profileFile, 'utf8'));
const runs = events.filter((e) => e.cat === 'Session' && e.name === 'model_run').sort((a, b) => a.ts - b.ts);
const firstEnd = runs[0] ? runs[0].ts + runs[0].dur : 0;
const kernels = events.filter((e) => e.cat === 'Node' && e.name.endsWith('_kernel_time') && e.ts > firstEnd);
const measured = Math.max(1, runs.length - 1);
const byOp = new Map<string, number>();
const byRegion = new Map<string, number>();
const byNode = new Map<string, number>();
const byRegionOp = new Map<string, number>();
const region = (n: string) => (n.startsWith('/optimizer') || n.startsWith('/accumulate') ? 'optimizer' : /_grad|backward/i.test(n) ? 'backward' : 'forward');
let total = 0;
for (const k of kernels) {
  const op = k.args?.op_name ?? '?';
  const node = k.name.replace(/_kernel_time$/, '');
  byOp.set(op, (byOp.get(op) ?? 0) + k.dur);
  byRegion.set(region(node), (byRegion.get(region(node)) ?? 0) + k.dur);
  byNode.set(node, (byNode.get(node) ?? 0) + k.dur);
  byRegionOp.set(`${region(node)} ${op}`, (byRegionOp.get(`${region(node)} ${op}`) ?? 0) + k.dur);
  total += k.dur;
}
const ms = (us: number) => +(us / 1000 / measured).toFixed(2);
const top = (m: Map<string, number>, n: number) => [...m].sort((a, b) => b[1] - a[1]).slice(0, n).map(([k, v]) => [k, ms(v), +((100 * v) / total).toFixed(1)]);
fs.rmSync(path.dirname(prefix), { recursive: true, force: true });
const wallWarm = wall.slice(1).sort((a, b) => a - b);
process.stdout.write(JSON.stringify({
  mode, batch, seq, steps, wallMsMedian: +wallWarm[Math.floor(wallWarm.length / 2)]!.toFixed(1), kernelMsPerStep: ms(total), kernels: kernels.length / measured,
  byRegion: top(byRegion, 5), byOp: top(byOp, 25), byRegionOp: top(byRegionOp, 30), topNodes: top(byNode, 25),
}, null, 1) + '\n');
