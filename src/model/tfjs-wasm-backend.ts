import * as wasmBackend from '@tensorflow/tfjs-backend-wasm';
import { tfjsWasmDir } from '../config/package-paths.js';

/**
 * TensorFlow.js's wasm backend, pointed at its binaries. Everything in ser-edge imports the
 * backend through this module (scripts/bundle.ts refuses any other import of it), so the
 * path is set before anything can start it: importing the package registers the backend,
 * and TensorFlow.js starts the best registered backend at the first tensor operation.
 * From dist/src the package finds its binaries itself; the bundle carries them in wasm/.
 */
const wasmDir = tfjsWasmDir();
if (wasmDir !== undefined) wasmBackend.setWasmPaths(wasmDir);

export const { setThreadsCount, getThreadsCount } = wasmBackend;
