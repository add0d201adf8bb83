/**
 * Setup file of every test file (vitest.config.ts): the temporary folders a test file made are
 * removed when it ends, and ONNX Runtime is kept from leaving a `mat-debug-<pid>.log` behind in
 * each test process (see src/runtime/ort-env.ts).
 */
import { afterAll } from 'vitest';
import { disableOrtTelemetryByDefault } from '../../src/runtime/ort-env.js';
import { removeTmpDirs } from './paths.js';

disableOrtTelemetryByDefault();
afterAll(removeTmpDirs);
