// meyda ships typings only for its ESM build, whose extension-less relative imports Node's
// ESM loader cannot resolve; ser-edge therefore loads the CommonJS build and types it here.
declare module 'meyda/dist/node/utilities.js' {
  export function createMelFilterBank(numFilters: number, sampleRate: number, bufferSize: number): number[][];
  export function createChromaFilterBank(
    numFilters: number,
    sampleRate: number,
    bufferSize: number,
    centerOctave?: number,
    octaveWidth?: number,
    baseC?: boolean,
    A440?: number,
  ): number[][];
}
