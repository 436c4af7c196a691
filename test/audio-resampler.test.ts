import assert from 'node:assert/strict';
import { test } from 'node:test';
import { resample, StreamingResampler } from '../src/audio/resampler.js';
import { amplitude, concat, rms, sine, zeroCrossingFrequency } from './helpers/audio-fixtures.js';

function decibels(ratio: number): number {
  return 20 * Math.log10(ratio);
}

test('a 1 kHz sine resampled from 48 kHz to 16 kHz keeps its frequency and amplitude within 1%', () => {
  const output = resample(sine(1000, 1, 48000, 0.5), 48000, 16000);
  assert.ok(Math.abs(zeroCrossingFrequency(output, 16000) - 1000) < 10);
  assert.ok(Math.abs(amplitude(output) - 0.5) < 0.005, `amplitude ${amplitude(output)}`);
});

test('a 15 kHz tone at 48 kHz, which would alias to 1 kHz if samples were dropped, is attenuated by at least 40 dB at 16 kHz', () => {
  const input = sine(15000, 1, 48000, 0.5);
  const dropped = input.filter((_, i) => i % 3 === 0);
  assert.ok(rms(dropped) > 0.3, 'the naive decimation really does alias');
  const output = resample(input, 48000, 16000);
  assert.ok(decibels(rms(output) / rms(input)) <= -40, `attenuation only ${decibels(rms(output) / rms(input)).toFixed(1)} dB`);
});

test('a 9 kHz tone at 48 kHz, above the 8 kHz output Nyquist, is attenuated by at least 40 dB at 16 kHz', () => {
  const input = sine(9000, 1, 48000, 0.5);
  const output = resample(input, 48000, 16000);
  assert.ok(decibels(rms(output) / rms(input)) <= -40);
});

test('a 7 kHz tone at 48 kHz, inside the 8 kHz output band, is not aliased to another frequency', () => {
  const output = resample(sine(7000, 1, 48000, 0.5), 48000, 16000);
  // 7 kHz lies in the filter's transition band: it may be softened but must stay at 7 kHz.
  assert.ok(Math.abs(zeroCrossingFrequency(output, 16000) - 7000) < 20);
});

test('44.1 kHz audio resampled to 16 kHz keeps a 440 Hz tone', () => {
  const output = resample(sine(440, 1, 44100, 0.5), 44100, 16000);
  assert.equal(output.length, 16000);
  assert.ok(Math.abs(zeroCrossingFrequency(output, 16000) - 440) < 2);
  assert.ok(Math.abs(amplitude(output) - 0.5) < 0.005);
});

test('8 kHz audio upsampled to 16 kHz keeps its tone and doubles its length', () => {
  const output = resample(sine(1000, 0.5, 8000, 0.5), 8000, 16000);
  assert.equal(output.length, 8000);
  assert.ok(Math.abs(zeroCrossingFrequency(output, 16000) - 1000) < 5);
  assert.ok(Math.abs(amplitude(output) - 0.5) < 0.005);
});

test('upsampling 8 kHz to 16 kHz adds no image of the tone above 4 kHz', () => {
  const output = resample(sine(3000, 1, 8000, 0.5), 8000, 16000);
  // An unfiltered image would sit at 5 kHz; a clean result is a pure 3 kHz tone.
  assert.ok(Math.abs(zeroCrossingFrequency(output, 16000) - 3000) < 10);
});

test('an awkward rate pair with thousands of phases still converts accurately', () => {
  const output = resample(sine(500, 1, 44101, 0.5), 44101, 16000);
  assert.ok(Math.abs(output.length - 16000) <= 1);
  assert.ok(Math.abs(zeroCrossingFrequency(output, 16000) - 500) < 2);
  assert.ok(Math.abs(amplitude(output) - 0.5) < 0.005);
});

test('output sample n lines up with input time n·inRate/outRate', () => {
  // A slow ramp survives filtering unchanged, so its value shows where each output sits.
  const input = new Float32Array(4800).map((_, i) => i / 4800);
  const output = resample(input, 48000, 16000);
  for (const n of [200, 800, 1400]) assert.ok(Math.abs(output[n] - (3 * n) / 4800) < 1e-4);
});

test('processing in uneven chunks gives exactly the whole-signal output', () => {
  const input = sine(1234, 0.5, 48000, 0.8);
  const whole = resample(input, 48000, 16000);
  const resampler = new StreamingResampler(48000, 16000);
  const pieces: Float32Array[] = [];
  let at = 0;
  for (const size of [1, 2, 7, 333, 1000, 5, 4096, 17]) {
    pieces.push(resampler.process(input.subarray(at, at + size)));
    at += size;
  }
  pieces.push(resampler.process(input.subarray(at)));
  pieces.push(resampler.flush());
  assert.deepEqual(concat(pieces), whole);
});

test('chunked upsampling equals whole-signal upsampling', () => {
  const input = sine(700, 0.3, 8000, 0.8);
  const whole = resample(input, 8000, 16000);
  const resampler = new StreamingResampler(8000, 16000);
  const pieces = [resampler.process(input.subarray(0, 99)), resampler.process(input.subarray(99)), resampler.flush()];
  assert.deepEqual(concat(pieces), whole);
});

test('the same rate is a pass-through copy', () => {
  const input = sine(440, 0.01, 16000);
  const resampler = new StreamingResampler(16000, 16000);
  const output = resampler.process(input);
  assert.deepEqual(output, input);
  assert.notEqual(output.buffer, input.buffer);
  assert.equal(resampler.flush().length, 0);
});

test('after flush the resampler starts a new signal from scratch', () => {
  const resampler = new StreamingResampler(48000, 16000);
  const input = sine(1000, 0.1, 48000);
  const first = concat([resampler.process(input), resampler.flush()]);
  const second = concat([resampler.process(input), resampler.flush()]);
  assert.deepEqual(second, first);
});

test('a non-integer or zero rate is refused', () => {
  assert.throws(() => new StreamingResampler(0, 16000), RangeError);
  assert.throws(() => new StreamingResampler(44100.5, 16000), RangeError);
});
