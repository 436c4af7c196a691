import { BlockAssembler, samplesPerBlock } from './block-assembler.js';
import { S16leDeinterleaver } from './pcm-s16le.js';
import { StreamingResampler } from './resampler.js';

export interface PcmStreamFormat {
  /** Rate of the incoming PCM. */
  inputRate: number;
  channelCount: number;
  /** Rate of the yielded blocks. */
  sampleRate: number;
  blockMs: number;
}

/**
 * The shared path from raw s16le bytes (stdin, a recorder's stdout) to pipeline blocks:
 * de-interleave, resample each channel, regroup into blocks of blockMs. The final block
 * at end of stream may be shorter.
 */
export async function* pcmStreamBlocks(chunks: AsyncIterable<Uint8Array>, format: PcmStreamFormat): AsyncGenerator<Float32Array[]> {
  const deinterleaver = new S16leDeinterleaver(format.channelCount);
  const resamplers = Array.from(
    { length: format.channelCount },
    () => new StreamingResampler(format.inputRate, format.sampleRate),
  );
  const assembler = new BlockAssembler(format.channelCount, samplesPerBlock(format.sampleRate, format.blockMs));

  for await (const chunk of chunks) {
    const frames = deinterleaver.push(chunk);
    if (frames[0].length === 0) continue;
    yield* assembler.push(frames.map((channel, c) => resamplers[c].process(channel)));
  }
  yield* assembler.push(resamplers.map((resampler) => resampler.flush()));
  const last = assembler.drain();
  if (last !== undefined) yield last;
}
