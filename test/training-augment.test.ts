import { test } from 'node:test';
import assert from 'node:assert/strict';
import { addNoise, changeSpeed, drawAugmentation, telephoneBand, timeShift } from '../src/training/augment.js';
import { FeatureCache } from '../src/training/feature-cache.js';
import { DEFAULT_WINDOWING } from '../src/audio/speech-windower.js';
import { FEATURE_PRESETS } from '../src/training/feature-presets.js';
import { frameVectorSize } from '../src/features/feature-config.js';
import { rms, sine, tempDir, writeWav } from './helpers/audio-fixtures.js';
import { join } from 'node:path';

const RATE = 16000;

test('the telephone channel passes speech frequencies and removes those outside 300–3400 Hz', () => {
  const pass = rms(telephoneBand(sine(1000, 1, RATE, 0.5), RATE)) / rms(sine(1000, 1, RATE, 0.5));
  const low = rms(telephoneBand(sine(100, 1, RATE, 0.5), RATE)) / rms(sine(100, 1, RATE, 0.5));
  const high = rms(telephoneBand(sine(5000, 1, RATE, 0.5), RATE)) / rms(sine(5000, 1, RATE, 0.5));
  assert.ok(pass > 0.85 && pass < 1.15, `1 kHz kept (${pass})`);
  assert.ok(low < 0.1, `100 Hz removed (${low})`);
  assert.ok(high < 0.05, `5 kHz removed (${high})`);
});

test('additive noise lands at the requested SNR', () => {
  const clean = sine(440, 1, RATE, 0.3);
  const noisy = addNoise(clean, 10, 7);
  const noise = noisy.map((v, i) => v - clean[i]!);
  const snr = 20 * Math.log10(rms(clean, 0) / rms(noise, 0));
  assert.ok(Math.abs(snr - 10) < 0.5, `snr ${snr}`);
});

test('speed and shift change the timing and keep the level', () => {
  const x = sine(440, 1, RATE, 0.3);
  assert.ok(Math.abs(changeSpeed(x, 1.1, RATE).length - RATE / 1.1) < 2);
  assert.equal(timeShift(x, 0.25, RATE).length, RATE + 4000);
  assert.equal(timeShift(x, -0.25, RATE).length, RATE - 4000);
});

test('an augmentation drawn for a clip is the same on every run and differs between clips', () => {
  assert.equal(drawAugmentation('noise', 'a.wav').key, drawAugmentation('noise', 'a.wav').key);
  const keys = new Set(['a', 'b', 'c', 'd', 'e', 'f'].map((c) => drawAugmentation('speed', `${c}.wav`).key));
  assert.ok(keys.size > 1);
});

test('cached windows come back as stored, under a key that changes with the file', async () => {
  const dir = tempDir('ser-edge-cache-');
  const file = await writeWav(join(dir, 'a.wav'), [sine(200, 0.5, RATE)], RATE);
  const dim = frameVectorSize(FEATURE_PRESETS.compact);
  const cache = new FeatureCache(join(dir, 'cache'), FEATURE_PRESETS.compact, DEFAULT_WINDOWING, dim);
  const key = await cache.keyFor(file, 'clean');
  assert.equal(await cache.get(key), null);
  const windows = [Float32Array.from({ length: dim * 3 }, (_, i) => i / 7), Float32Array.from({ length: dim }, () => -1)];
  await cache.put(key, windows);
  assert.deepEqual(await cache.get(key), windows);
  assert.notEqual(await cache.keyFor(file, 'noise:10:1'), key);
});
