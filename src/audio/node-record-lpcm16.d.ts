// The package ships no types; this covers only what microphone-source.ts uses.
declare module 'node-record-lpcm16' {
  import type { ChildProcess } from 'node:child_process';
  import type { Readable } from 'node:stream';

  export interface RecordOptions {
    sampleRate?: number;
    channels?: number;
    device?: string;
    recorder?: 'arecord' | 'sox' | 'rec';
    audioType?: string;
    threshold?: number;
    endOnSilence?: boolean;
  }

  export interface Recording {
    /** The spawned recorder; undefined only if construction failed. */
    process: ChildProcess;
    stream(): Readable;
    stop(): void;
    pause(): void;
    resume(): void;
  }

  export function record(options?: RecordOptions): Recording;
  const recorder: { record: typeof record };
  export default recorder;
}
