/**
 * The part of the WebAssembly JS API the kernels use. The project compiles against lib
 * ES2023 without DOM, and @types/node 20 does not declare these globals (Node has them).
 */
declare namespace WebAssembly {
  class Module {
    constructor(bytes: Uint8Array);
  }
  class Instance {
    constructor(module: Module, imports: Record<string, Record<string, unknown>>);
    readonly exports: Exports;
  }
  class Memory {
    readonly buffer: ArrayBuffer;
    grow(pages: number): number;
  }
  type Exports = Record<string, unknown>;
  function validate(bytes: Uint8Array): boolean;
}
