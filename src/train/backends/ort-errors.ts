import { ModtuneError } from '../../errors.js';

/** What ONNX Runtime says when an allocation fails: its arena, the C++ allocator, CUDA. */
const ALLOCATION_FAILURE = /failed to allocate|bad_alloc|bad allocation|out of memory|cannot allocate memory|smaller than requested bytes|CUDA_ERROR_OUT_OF_MEMORY|CUBLAS_STATUS_ALLOC_FAILED/i;

/** A batch (or model) that does not fit in memory. */
export class OutOfMemoryError extends ModtuneError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'OutOfMemoryError';
  }
}

export function isAllocationFailure(e: unknown): boolean {
  return ALLOCATION_FAILURE.test(messageOf(e));
}

export function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** Smaller batches with the same effective batch size. */
export function batchAdvice(batchSize: number | undefined): string {
  if (batchSize && batchSize >= 2) {
    const half = Math.floor(batchSize / 2);
    return `try a smaller --batch-size with --grad-accum to keep the effective batch size (e.g. --batch-size ${half} --grad-accum 2)`;
  }
  return 'try a smaller --batch-size (with --grad-accum to keep the effective batch size) or a smaller --max-length';
}

/**
 * A session.run failure as a user-facing error: an allocation failure becomes advice about the
 * batch size; anything else names the model file and what ran.
 */
export function translateRunError(e: unknown, ctx: { file: string; what: string; batch: number; seqLen: number; batchSize?: number }): Error {
  const msg = firstLine(messageOf(e));
  if (isAllocationFailure(e)) {
    return new OutOfMemoryError(
      `out of memory running ${ctx.what} on a batch of ${ctx.batch}×${ctx.seqLen} tokens (ONNX Runtime: ${msg}): the batch does not fit in memory; ${batchAdvice(ctx.batchSize ?? ctx.batch)}`,
      { cause: e },
    );
  }
  return new ModtuneError(`${ctx.file}: ONNX Runtime failed running ${ctx.what}: ${msg}`, { cause: e });
}

/** How to get ONNX Runtime's CUDA provider into onnxruntime-node. */
export const CUDA_INSTALL_HINT =
  'ONNX Runtime\'s CUDA provider is not installed; on a machine with CUDA 12 and cuDNN 9, reinstall onnxruntime-node with it: ' +
  '`npm install onnxruntime-node --onnxruntime-node-install=cuda12` (or use --device cpu)';

/** A session-creation failure as a user-facing error (missing CUDA provider, bad file, memory). */
export function translateCreateError(e: unknown, ctx: { file: string; device: 'cpu' | 'cuda' }): Error {
  const msg = firstLine(messageOf(e));
  if (ctx.device === 'cuda' && /cuda|providers_shared|provider/i.test(msg)) {
    return new ModtuneError(`--device cuda: cannot start ONNX Runtime's CUDA provider for ${ctx.file} (${msg}). ${CUDA_INSTALL_HINT}`, { cause: e });
  }
  if (isAllocationFailure(e)) {
    return new OutOfMemoryError(`${ctx.file}: out of memory while loading the model (ONNX Runtime: ${msg})`, { cause: e });
  }
  return new ModtuneError(`${ctx.file}: ONNX Runtime cannot load this model: ${msg}`, { cause: e });
}

function firstLine(s: string): string {
  const line = s.split('\n').find((l) => l.trim()) ?? s;
  return line.length > 400 ? `${line.slice(0, 400)}…` : line;
}
