import { describe, expect, it } from 'vitest';
import { ModtuneError } from '../../src/errors.js';
import { isAllocationFailure, OutOfMemoryError, translateCreateError, translateRunError } from '../../src/train/backends/ort-errors.js';

const ctx = { file: '/a/native/train_step.onnx', what: 'a training step', batch: 32, seqLen: 128, batchSize: 32 };

describe('ONNX Runtime errors as user errors', () => {
  it('allocation failures (arena, C++ allocator, CUDA) become batch-size advice', () => {
    for (const msg of [
      '[ONNXRuntimeError] : 6 : RUNTIME_EXCEPTION : Non-zero status code returned while running MatMul node. Name:\'/bert/encoder/layer.0/attention/self/MatMul\' Status Message: Failed to allocate memory for requested buffer of size 4294967296',
      'std::bad_alloc',
      'CUDA failure 2: out of memory ; GPU=0 ; hostname=x ; file=cuda_allocator.cc',
      'Available memory of 1024 is smaller than requested bytes of 2048',
    ]) {
      expect(isAllocationFailure(new Error(msg)), msg).toBe(true);
      const e = translateRunError(new Error(msg), ctx);
      expect(e).toBeInstanceOf(OutOfMemoryError);
      expect(e).toBeInstanceOf(ModtuneError);
      expect(e.message).toContain('out of memory running a training step on a batch of 32×128 tokens');
      expect(e.message).toContain('the batch does not fit in memory; try a smaller --batch-size with --grad-accum to keep the effective batch size (e.g. --batch-size 16 --grad-accum 2)');
    }
  });

  it('other failures name the model file', () => {
    const e = translateRunError(new Error('Got invalid dimensions for input: labels'), ctx);
    expect(isAllocationFailure(new Error('Got invalid dimensions'))).toBe(false);
    expect(e.message).toBe('/a/native/train_step.onnx: ONNX Runtime failed running a training step: Got invalid dimensions for input: labels');
  });

  it('a missing CUDA provider says how to install it', () => {
    const e = translateCreateError(new Error('OrtSessionOptionsAppendExecutionProvider_Cuda: Failed to load shared library'), { file: 'm.onnx', device: 'cuda' });
    expect(e.message).toMatch(/^--device cuda: cannot start ONNX Runtime's CUDA provider for m\.onnx .*npm install onnxruntime-node --onnxruntime-node-install=cuda12/);
    expect(translateCreateError(new Error('Protobuf parsing failed.'), { file: 'm.onnx', device: 'cpu' }).message).toBe('m.onnx: ONNX Runtime cannot load this model: Protobuf parsing failed.');
  });
});
