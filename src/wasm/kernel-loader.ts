/**
 * Loading the hand-written WebAssembly kernels. Each kernel lives with the stage that runs
 * it (`features/kernels/`, `model/kernels/`); this loader is shared by both, so it sits
 * below them and neither stage imports the other's code.
 *
 * They are small (well under the 4 KiB that browsers allow for synchronous compilation;
 * Node has no limit), so they are compiled synchronously and a frame analyser or a
 * classifier can be built without an await.
 */
const modules = new Map<string, WebAssembly.Module | null>();

/**
 * The compiled module for a kernel's base64 bytes, or null when this runtime cannot run it
 * (no WebAssembly, or no SIMD: validating the kernel itself is the most exact probe).
 * Compiled once per process.
 */
export function kernelModule(base64: string): WebAssembly.Module | null {
  let module = modules.get(base64);
  if (module === undefined) {
    const bytes = Buffer.from(base64, 'base64');
    module = typeof WebAssembly === 'object' && WebAssembly.validate(bytes) ? new WebAssembly.Module(bytes) : null;
    modules.set(base64, module);
  }
  return module;
}

/** A kernel instance with its own memory, grown to at least `bytes`. */
export function instantiateKernel(module: WebAssembly.Module, bytes: number): { exports: WebAssembly.Exports; memory: WebAssembly.Memory } {
  const instance = new WebAssembly.Instance(module, {});
  const memory = instance.exports['memory'] as WebAssembly.Memory;
  const need = Math.ceil(bytes / 65536) - memory.buffer.byteLength / 65536;
  if (need > 0) memory.grow(need);
  return { exports: instance.exports, memory };
}
