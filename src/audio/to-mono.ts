/**
 * Averages channels into one. Averaging (rather than summing) keeps the result in
 * [-1, 1] whatever the channel count.
 */
export function toMono(channels: readonly Float32Array[]): Float32Array {
  if (channels.length === 0) return new Float32Array(0);
  if (channels.length === 1) return channels[0].slice();
  const length = channels[0].length;
  for (const channel of channels) {
    if (channel.length !== length) {
      throw new RangeError(`toMono: channels differ in length (${length} and ${channel.length} samples)`);
    }
  }
  const mono = new Float32Array(length);
  for (const channel of channels) {
    for (let i = 0; i < length; i++) mono[i] += channel[i];
  }
  const scale = 1 / channels.length;
  for (let i = 0; i < length; i++) mono[i] *= scale;
  return mono;
}
