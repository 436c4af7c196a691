import { constants } from 'node:fs';
import { access } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import recorderModule, { type Recording } from 'node-record-lpcm16';
import { AudioInputError, type AudioSource } from './audio-source.js';
import { pcmStreamBlocks, type PcmStreamFormat } from './pcm-stream-blocks.js';
import { checkPcmFormat } from './stdin-source.js';

export type RecorderName = 'arecord' | 'sox' | 'rec';

/** Debian package that provides each recorder binary, for the install hint. */
export const RECORDER_PACKAGES: Record<RecorderName, string> = {
  arecord: 'alsa-utils',
  sox: 'sox',
  rec: 'sox',
};

export interface MicrophoneSourceOptions {
  /** ALSA device such as `hw:1,0` or `plughw:CARD=Headset`; the system default if absent. */
  device?: string;
  /** arecord on gateways (ALSA, no extra install); sox/rec where SoX is preferred. Default arecord. */
  recorder?: RecorderName;
  channels?: number;
  /** Rate asked of the device; default sampleRate. Set it to the device's native rate to resample here instead of in ALSA. */
  inputRate?: number;
  /** Rate of the yielded blocks. Default 16000. */
  sampleRate?: number;
  blockMs?: number;
}

/** Keeps the end of the recorder's stderr: the last lines say why it stopped. */
const STDERR_TAIL_BYTES = 2000;
const STOP_GRACE_MS = 2000;

/**
 * A headset microphone captured by a recorder process. When the recorder stops on its
 * own (device unplugged, ALSA error), blocks() yields what was captured and then throws
 * an AudioInputError naming the device, the exit status and the recorder's stderr, so
 * the daemon can retry with backoff by calling blocks() again.
 */
export class MicrophoneSource implements AudioSource {
  readonly description: string;
  readonly sampleRate: number;
  readonly channelCount: number;
  private readonly options: Required<Pick<MicrophoneSourceOptions, 'recorder'>> & MicrophoneSourceOptions;
  private readonly format: PcmStreamFormat;
  private active: { recording: Recording; exited: Promise<RecorderExit> } | undefined;
  private closing = false;

  constructor(dependencies: { options: MicrophoneSourceOptions & { recorder: RecorderName }; format: PcmStreamFormat; description: string }) {
    this.options = dependencies.options;
    this.format = dependencies.format;
    this.description = dependencies.description;
    this.sampleRate = dependencies.format.sampleRate;
    this.channelCount = dependencies.format.channelCount;
  }

  async *blocks(): AsyncGenerator<Float32Array[]> {
    if (this.active !== undefined) throw new AudioInputError(this.description, 'blocks() is already being read');
    if (this.closing) return;
    const { recording, exited, stderrTail } = this.startRecorder();
    this.active = { recording, exited };
    let readError: unknown;
    try {
      yield* pcmStreamBlocks(recording.stream(), this.format);
    } catch (error) {
      readError = error;
    } finally {
      // Reached also when the consumer stops early: never leave a recorder running.
      if (recording.process.exitCode === null && recording.process.signalCode === null) recording.process.kill();
    }
    const exit = await exited;
    this.active = undefined;
    if (this.closing) return;
    throw new AudioInputError(this.description, describeStop(this.options.recorder, exit, stderrTail(), readError));
  }

  async close(): Promise<void> {
    this.closing = true;
    const active = this.active;
    if (active === undefined) return;
    active.recording.process.kill();
    const timer = setTimeout(() => active.recording.process.kill('SIGKILL'), STOP_GRACE_MS);
    try {
      await active.exited;
    } finally {
      clearTimeout(timer);
    }
  }

  private startRecorder(): { recording: Recording; exited: Promise<RecorderExit>; stderrTail: () => string } {
    const recording = recorderModule.record({
      sampleRate: this.format.inputRate,
      channels: this.format.channelCount,
      recorder: this.options.recorder,
      audioType: 'raw',
      ...(this.options.device === undefined ? {} : { device: this.options.device }),
    });
    const child = recording.process;
    let stderr = '';
    child.stderr?.on('data', (chunk: Buffer | string) => {
      stderr = (stderr + chunk.toString()).slice(-STDERR_TAIL_BYTES);
    });
    // The library re-emits a non-zero exit as an 'error' *string* on stdout, possibly after
    // the stream has ended; without a listener that emit would crash the process.
    recording.stream().on('error', () => {});
    const exited = new Promise<RecorderExit>((resolve) => {
      child.once('error', (error) => resolve({ code: null, signal: null, spawnError: error }));
      child.once('close', (code, signal) => resolve({ code, signal }));
    });
    return { recording, exited, stderrTail: () => stderr.trim() };
  }
}

interface RecorderExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  spawnError?: Error;
}

function describeStop(recorder: RecorderName, exit: RecorderExit, stderr: string, readError: unknown): string {
  const how =
    exit.spawnError !== undefined
      ? `could not be started (${exit.spawnError.message})`
      : exit.signal !== null
        ? `was killed by ${exit.signal}`
        : `exited with code ${exit.code}`;
  const details = stderr !== '' ? `: ${stderr}` : readError instanceof Error ? `: ${readError.message}` : '';
  return `recorder ${recorder} ${how}${details}; check the headset is plugged in (\`arecord -l\` lists devices) — capture will be retried`;
}

export async function openMicrophoneSource(options: MicrophoneSourceOptions = {}): Promise<MicrophoneSource> {
  const recorder = options.recorder ?? 'arecord';
  const description = `mic:${options.device ?? 'default'}`;
  const sampleRate = options.sampleRate ?? 16000;
  const format: PcmStreamFormat = {
    inputRate: options.inputRate ?? sampleRate,
    channelCount: options.channels ?? 1,
    sampleRate,
    blockMs: options.blockMs ?? 100,
  };
  checkPcmFormat(format, description);
  if (!(recorder in RECORDER_PACKAGES)) {
    throw new AudioInputError(description, `unknown recorder "${recorder}"; use arecord, sox or rec`);
  }
  if ((await findOnPath(recorder)) === undefined) {
    throw new AudioInputError(
      description,
      `recorder binary "${recorder}" not found on PATH; install it with \`apt-get install ${RECORDER_PACKAGES[recorder]}\``,
    );
  }
  return new MicrophoneSource({ options: { ...options, recorder }, format, description });
}

/** Full path of an executable found on PATH, as spawn() would find it. */
export async function findOnPath(binary: string, path = process.env.PATH ?? ''): Promise<string | undefined> {
  for (const directory of path.split(delimiter)) {
    if (directory === '') continue;
    const candidate = join(directory, binary);
    try {
      await access(candidate, constants.X_OK);
      return candidate;
    } catch {
      // Not in this directory.
    }
  }
  return undefined;
}
