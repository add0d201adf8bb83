import { ModtuneError } from '../../errors.js';
import { nativeBackend } from './native.js';
import { ortWebBackend } from './ort-web.js';
import type { BackendFactory, BackendName } from './types.js';
import { disableOrtTelemetryByDefault } from '../../runtime/ort-env.js';

// Before any backend creates an ONNX Runtime session (see ort-env.ts).
disableOrtTelemetryByDefault();

export type { BackendFactory, BackendName, BackendOptions, Device, StepControl, TensorMap, TrainBackend } from './types.js';
export { NativeBackend, createSession, defaultThreads, readInitialParameters, checkParameters, momentNames } from './native.js';

export const BACKEND_NAMES: readonly BackendName[] = ['native', 'ort-web'];

/**
 * Every backend the trainer can run: an implementation of `TrainBackend` plus the artifact format
 * it needs (native: onnxruntime-node on the standard-ops models; ort-web: onnxruntime-web's
 * on-device-training build on the ORT training artifacts).
 */
const BACKENDS: Partial<Record<BackendName, BackendFactory>> = {
  native: nativeBackend,
  'ort-web': ortWebBackend,
};

/** Add or replace a backend by name (e.g. a wrapped or instrumented one). */
export function registerBackend(name: BackendName, factory: BackendFactory): void {
  BACKENDS[name] = factory;
}

export function getBackend(name: string): BackendFactory {
  if (!BACKEND_NAMES.includes(name as BackendName)) {
    throw new ModtuneError(`unknown --backend '${name}': expected ${BACKEND_NAMES.join(' or ')}`);
  }
  const factory = BACKENDS[name as BackendName];
  if (!factory) throw new ModtuneError(`--backend ${name} is not available yet in this version; use --backend native`);
  return factory;
}
