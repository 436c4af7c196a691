import * as tf from '@tensorflow/tfjs';

export type TfBackendName = 'tensorflow' | 'wasm' | 'cpu';

/** The preference order of DESIGN.md: native libtensorflow, then wasm (SIMD), then plain JS. */
export const DEFAULT_TF_BACKENDS: readonly TfBackendName[] = ['tensorflow', 'wasm', 'cpu'];

// A variable, not a literal: tfjs-node is an optional dependency that is usually absent,
// so neither the compiler nor a bundler may try to resolve it.
const TFJS_NODE = '@tensorflow/tfjs-node';

async function register(name: TfBackendName): Promise<boolean> {
  try {
    if (name === 'tensorflow') await import(TFJS_NODE);
    else if (name === 'wasm') await import('./tfjs-wasm-backend.js');
    return await tf.setBackend(name);
  } catch {
    // Not installed, or its native library / wasm binary would not load: try the next.
    return false;
  }
}

/**
 * Activates the first TensorFlow.js backend of `order` that loads here and returns its
 * name (for telemetry). Throws, naming what was tried, when none does.
 */
export async function selectTfBackend(order: readonly TfBackendName[] = DEFAULT_TF_BACKENDS): Promise<string> {
  for (const name of order) {
    if (tf.getBackend() === name) return name;
    if (await register(name)) {
      await tf.ready();
      return tf.getBackend();
    }
  }
  throw new Error(`no TensorFlow.js backend of ${order.join(', ')} could be started (tfjs-node is optional; wasm and cpu ship with the package)`);
}

export { tf };
