/**
 * Whether onnxruntime-node has its CUDA provider libraries. Asking ONNX Runtime for the CUDA provider
 * when they are absent makes it print a red "Failed to load library" line from native code before
 * it fails; checking the files first keeps a CPU-only install quiet and the message ours.
 */
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { ModtuneError } from '../../errors.js';
import { CUDA_INSTALL_HINT } from './ort-errors.js';

/** The folder holding onnxruntime-node's native libraries for this platform. */
export function ortNativeFolder(): string | undefined {
  try {
    const entry = createRequire(import.meta.url).resolve('onnxruntime-node');
    const root = path.resolve(path.dirname(entry), '..');
    return path.join(root, 'bin', 'napi-v6', process.platform, process.arch);
  } catch {
    return undefined;
  }
}

export function cudaProviderInstalled(folder = ortNativeFolder()): boolean {
  if (!folder || !fs.existsSync(folder)) return false;
  const files = fs.readdirSync(folder);
  return files.some((f) => f.includes('providers_cuda')) && files.some((f) => f.includes('providers_shared'));
}

/** Refuse --device cuda on an install without the CUDA provider, before ONNX Runtime tries to load it. */
export function checkCudaProvider(file: string): void {
  if (!cudaProviderInstalled()) throw new ModtuneError(`--device cuda: cannot start ONNX Runtime's CUDA provider for ${file}. ${CUDA_INSTALL_HINT}`);
}
