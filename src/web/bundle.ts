/**
 * The page bundle: esbuild bundles src/web/page (the page script and its two workers) for the
 * browser, and onnxruntime-web 1.19.2's training build (its ES module, the Emscripten loader and
 * the threaded SIMD wasm) is copied beside it from node_modules. One runtime serves both inference
 * and training, so the page ships one 11 MB wasm file.
 *
 * `npm run build` writes it to dist/page; `modtune web` serves that, or bundles into the cache when
 * it is missing (a source checkout run with tsx).
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ModtuneError } from '../errors.js';
import { modtuneCacheDir, packageRoot } from '../data/paths.js';

/** The onnxruntime-web files the page loads (from /ort/). */
export const ORT_FILES = ['ort.training.wasm.min.mjs', 'ort-training-wasm-simd-threaded.mjs', 'ort-training-wasm-simd-threaded.wasm'];
const STATIC_FILES = ['index.html', 'style.css'];
const ENTRIES = ['main.ts', 'predict-worker.ts', 'train-worker.ts'];

function pageSourceDir(): string {
  const root = packageRoot();
  const dir = root ? path.join(root, 'src', 'web', 'page') : path.join(path.dirname(fileURLToPath(import.meta.url)), 'page');
  return dir;
}

function ortDistDir(): string {
  const require = createRequire(import.meta.url);
  let entry: string;
  try {
    entry = require.resolve('onnxruntime-web');
  } catch {
    throw new ModtuneError('onnxruntime-web is not installed; the page needs onnxruntime-web 1.19.2 (its training build)');
  }
  for (let dir = path.dirname(entry); dir !== path.dirname(dir); dir = path.dirname(dir)) {
    if (fs.existsSync(path.join(dir, 'dist', ORT_FILES[0]!))) return path.join(dir, 'dist');
  }
  throw new ModtuneError(`onnxruntime-web: no dist/${ORT_FILES[0]} above ${entry}; the training build was removed in 1.20, install 1.19.2`);
}

/** Bundle the page into `out` (replaced). */
export async function buildPage(out: string): Promise<string> {
  const src = pageSourceDir();
  if (!fs.existsSync(path.join(src, 'main.ts'))) throw new ModtuneError(`${src}: the page sources are missing; reinstall modtune`);
  let esbuild: typeof import('esbuild');
  try {
    esbuild = await import('esbuild');
  } catch {
    throw new ModtuneError('esbuild is not installed, so the page cannot be bundled; run `npm run build` in a checkout with its dev dependencies');
  }
  const tmp = `${path.resolve(out)}.tmp-${process.pid}`;
  fs.rmSync(tmp, { recursive: true, force: true });
  fs.mkdirSync(path.join(tmp, 'ort'), { recursive: true });
  try {
    await esbuild.build({
      entryPoints: ENTRIES.map((e) => path.join(src, e)),
      outdir: tmp,
      bundle: true,
      format: 'esm',
      platform: 'browser',
      target: ['chrome110', 'firefox115', 'safari16'],
      minify: true,
      sourcemap: true,
      logLevel: 'error',
      legalComments: 'none',
    });
    for (const f of STATIC_FILES) fs.copyFileSync(path.join(src, f), path.join(tmp, f));
    const ort = ortDistDir();
    for (const f of ORT_FILES) fs.copyFileSync(path.join(ort, f), path.join(tmp, 'ort', f));
    fs.rmSync(out, { recursive: true, force: true });
    fs.renameSync(tmp, out);
  } catch (e) {
    fs.rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
  return out;
}

/** A hash of the page sources, so a bundle made from other sources is not reused. */
function sourceHash(): string {
  const h = crypto.createHash('sha256');
  const walk = (dir: string) => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else h.update(e.name).update(fs.readFileSync(p));
    }
  };
  walk(pageSourceDir());
  return h.digest('hex').slice(0, 16);
}

/** The built page: dist/page of the installation when present, else a bundle in the cache. */
export async function pageDir(opts: { cacheDir?: string } = {}): Promise<string> {
  const root = packageRoot();
  const dist = root ? path.join(root, 'dist', 'page') : undefined;
  if (dist && fs.existsSync(path.join(dist, 'index.html'))) {
    // An installed package has no page sources: its bundle is the one. A checkout's must match them.
    if (!fs.existsSync(path.join(pageSourceDir(), 'main.ts')) || readStamp(dist) === sourceHash()) return dist;
  }
  const cached = path.join(modtuneCacheDir(opts.cacheDir), 'web', `page-${sourceHash()}`);
  if (!fs.existsSync(path.join(cached, 'index.html'))) await buildPage(cached);
  return cached;
}

function readStamp(dir: string): string | undefined {
  try {
    return fs.readFileSync(path.join(dir, 'source.sha'), 'utf8');
  } catch {
    return undefined;
  }
}

/** `npm run build`: the page into dist/page, stamped with its source hash. */
export async function buildDistPage(): Promise<string> {
  const root = packageRoot();
  if (!root) throw new ModtuneError('cannot find the modtune package folder');
  const out = path.join(root, 'dist', 'page');
  await buildPage(out);
  fs.writeFileSync(path.join(out, 'source.sha'), sourceHash());
  return out;
}
