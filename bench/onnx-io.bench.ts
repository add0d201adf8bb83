/**
 * Loading and saving a bert-base-sized ONNX model: time (median of 3) and peak memory above the
 * process's baseline, measured in a fresh child process so nothing else inflates its RSS.
 * Targets: load and save each under 3 s and under 1.5× the model size in extra memory.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { buildBert, countParameters, presetConfig } from '../src/bert/index.js';
import { saveModel } from '../src/onnx/io.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const TARGET_SECONDS = 3;
const TARGET_RATIO = 1.5;

/** The measuring script: run as `node --expose-gc --import tsx child.mts <model> <save-to>`. */
const CHILD = (ioModule: string) => `
import * as fs from 'node:fs';
import { loadModel, saveModel } from ${JSON.stringify(ioModule)};

const [file, saveTo] = process.argv.slice(2);
const gc = (globalThis as { gc?: () => void }).gc ?? (() => {});

/** A /proc/self/status field in bytes (VmRSS: current, VmHWM: peak). */
function status(key: string): number {
  const line = fs.readFileSync('/proc/self/status', 'utf8').split('\\n').find((l) => l.startsWith(key + ':'));
  return line ? Number(line.split(/\\s+/)[1]) * 1024 : NaN;
}
/** Reset VmHWM to the current RSS (Linux: write 5 to clear_refs), so each phase has its own peak. */
function resetPeak(): boolean {
  try { fs.writeFileSync('/proc/self/clear_refs', '5'); return true; } catch { return false; }
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

gc();
const baseline = status('VmRSS');
const peakReset = resetPeak();
const loadMs: number[] = [];
const loadCpuMs: number[] = [];
/** user + system CPU time since \`since\`, in ms: what the work costs, whatever else runs on the machine. */
const cpuMs = (since: NodeJS.CpuUsage) => { const u = process.cpuUsage(since); return (u.user + u.system) / 1000; };
let model: ReturnType<typeof loadModel> | undefined;
let loadPeak = 0;
for (let i = 0; i < 3; i++) {
  model = undefined;
  gc();
  const before = status('VmRSS');
  resetPeak();
  const t = performance.now();
  const c = process.cpuUsage();
  model = loadModel(file);
  loadMs.push(performance.now() - t);
  loadCpuMs.push(cpuMs(c));
  loadPeak = Math.max(loadPeak, status('VmHWM') - (peakReset ? before : baseline));
}
const saveMs: number[] = [];
const saveCpuMs: number[] = [];
let savePeak = 0;
for (let i = 0; i < 3; i++) {
  gc();
  const before = status('VmRSS');
  resetPeak();
  const t = performance.now();
  const c = process.cpuUsage();
  saveModel(model!, saveTo);
  saveMs.push(performance.now() - t);
  saveCpuMs.push(cpuMs(c));
  savePeak = Math.max(savePeak, status('VmHWM') - before);
}
// The disk's floor, side by side: the same number of bytes written from one buffer and fsynced.
const floorMs: number[] = [];
const bytes = Buffer.alloc(fs.statSync(file).size, 1);
for (let i = 0; i < 3; i++) {
  const t = performance.now();
  const fd = fs.openSync(saveTo + '.floor', 'w');
  let done = 0;
  while (done < bytes.byteLength) done += fs.writeSync(fd, bytes, done, bytes.byteLength - done);
  fs.fsyncSync(fd);
  fs.closeSync(fd);
  floorMs.push(performance.now() - t);
}
process.stdout.write(JSON.stringify({ floorMedianMs: median(floorMs), baseline, peakReset, loadMs, saveMs, loadMedianMs: median(loadMs), saveMedianMs: median(saveMs), loadCpuMedianMs: median(loadCpuMs), saveCpuMedianMs: median(saveCpuMs), loadPeak, savePeak }));
`;

export async function run(): Promise<object> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'modtune-bench-io-'));
  try {
    const t0 = performance.now();
    let model: ReturnType<typeof buildBert> | undefined = buildBert({ config: presetConfig('bert-base'), seed: 0 });
    const buildMs = performance.now() - t0;
    const parameters = countParameters(model);
    const file = path.join(dir, 'bert-base.onnx');
    const t1 = performance.now();
    saveModel(model, file);
    const firstSaveMs = performance.now() - t1;
    model = undefined;
    const modelBytes = fs.statSync(file).size;

    const child = path.join(dir, 'measure.mts');
    fs.writeFileSync(child, CHILD(pathToFileURL(path.join(ROOT, 'src/onnx/io.ts')).href));
    const r = spawnSync(process.execPath, ['--expose-gc', '--import', 'tsx', child, file, path.join(dir, 'resaved.onnx')], {
      cwd: ROOT,
      encoding: 'utf8',
      maxBuffer: 1 << 20,
    });
    if (r.status !== 0) throw new Error(`measuring process failed (${r.status}): ${r.stderr}`);
    const m = JSON.parse(r.stdout) as {
      baseline: number; peakReset: boolean; loadMs: number[]; saveMs: number[];
      floorMedianMs: number; loadMedianMs: number; saveMedianMs: number; loadCpuMedianMs: number; saveCpuMedianMs: number; loadPeak: number; savePeak: number;
    };
    const mib = (n: number) => Math.round((n / 2 ** 20) * 10) / 10;
    const round = (n: number) => Math.round(n);
    const ratio = (n: number) => Math.round((n / modelBytes) * 100) / 100;
    return {
      model: 'bert-base (random init, pooler, no head)',
      parameters,
      modelMiB: mib(modelBytes),
      buildMs: round(buildMs),
      firstSaveInBuilderProcessMs: round(firstSaveMs),
      load: { medianMs: round(m.loadMedianMs), runsMs: m.loadMs.map(round), cpuMedianMs: round(m.loadCpuMedianMs), extraRssMiB: mib(m.loadPeak), extraRssOverModelSize: ratio(m.loadPeak) },
      save: { medianMs: round(m.saveMedianMs), runsMs: m.saveMs.map(round), cpuMedianMs: round(m.saveCpuMedianMs), extraRssMiB: mib(m.savePeak), extraRssOverModelSize: ratio(m.savePeak) },
      writeAndFsyncSameBytesMedianMs: round(m.floorMedianMs),
      childBaselineRssMiB: mib(m.baseline),
      // Wall times on a shared machine include waiting for the CPU; the load average says how busy it was.
      loadAverage1m: Math.round(os.loadavg()[0]! * 10) / 10,
      peakMeasuredPerPhase: m.peakReset,
      targets: {
        loadUnder3s: m.loadMedianMs < TARGET_SECONDS * 1000,
        saveUnder3s: m.saveMedianMs < TARGET_SECONDS * 1000,
        loadExtraUnder1_5x: m.loadPeak < TARGET_RATIO * modelBytes,
        saveExtraUnder1_5x: m.savePeak < TARGET_RATIO * modelBytes,
      },
    };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
