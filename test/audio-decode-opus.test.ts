import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync } from 'node:fs';
import { copyFile, readFile, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { AudioInputError } from '../src/audio/audio-source.js';
import { decodeAudioFile } from '../src/audio/decode-audio-file.js';
import { opusPacketSamples } from '../src/audio/decode-ogg-opus.js';
import { openFileSource } from '../src/audio/file-source.js';
import { findOnPath } from '../src/audio/microphone-source.js';
import { oggCrc, packetEnds, readOggPages, type OggPage } from '../src/audio/ogg-pages.js';
import { loadMono } from '../src/pipeline/file-features.js';
import { amplitude, collect, concat, rms, sine, tempDir, writeWav, zeroCrossingFrequency } from './helpers/audio-fixtures.js';

const dir = tempDir('ser-edge-opus-');
const opusenc = await findOnPath('opusenc');
const noEncoder = opusenc === undefined && 'opusenc absent (Debian: apt-get install opus-tools): skipping the Ogg Opus tests that encode their own audio';

/** Encodes channels (at `rate`) with opusenc as a recorder would, at 64 kbit/s. */
async function encodeOpus(name: string, channels: Float32Array[], rate: number): Promise<string> {
  const wav = await writeWav(join(dir, `${name}.wav`), channels, rate, '16');
  const path = join(dir, `${name}.opus`);
  execFileSync(opusenc as string, ['--quiet', '--bitrate', '64', wav, path], { stdio: 'pipe' });
  return path;
}

/** A copy of an Ogg file with pages edited in place, each page's CRC made right again. */
function withPagesEdited(bytes: Uint8Array, edit: (page: OggPage, header: DataView, body: Uint8Array) => void): Uint8Array {
  const out = new Uint8Array(bytes);
  for (const page of readOggPages(bytes)) {
    edit(page, new DataView(out.buffer, page.offset, 27), out.subarray(page.end - page.body.length, page.end));
    new DataView(out.buffer).setUint32(page.offset + 22, oggCrc(out.subarray(page.offset, page.end), 22), true);
  }
  return out;
}

async function rejectsNaming(path: string, message: RegExp): Promise<void> {
  await assert.rejects(decodeAudioFile(path), (error: unknown) => {
    assert.ok(error instanceof AudioInputError, String(error));
    assert.equal(error.source, path);
    assert.ok(error.message.startsWith(`${path}: `), error.message);
    assert.match(error.message, message);
    return true;
  });
}

let tone: string;
async function toneFile(): Promise<string> {
  tone ??= await encodeOpus('tone', [sine(440, 1, 16000, 0.5)], 16000);
  return tone;
}

test('an Ogg Opus file decodes at 48 kHz to exactly the samples its pages declare', { skip: noEncoder }, async () => {
  const audio = await decodeAudioFile(await toneFile());
  assert.equal(audio.sampleRate, 48000);
  assert.equal(audio.channels.length, 1);
  assert.equal(audio.channels[0]!.length, 48000, '1 s encoded from 16 kHz: pre-skip and end padding removed');
  assert.ok(Math.abs(zeroCrossingFrequency(audio.channels[0]!, 48000) - 440) < 1);
  assert.ok(Math.abs(amplitude(audio.channels[0]!) - 0.5) < 0.03, `amplitude ${amplitude(audio.channels[0]!)}`);
});

test('an Ogg Opus file is recognised by its signature whatever its extension', { skip: noEncoder }, async () => {
  const renamed = join(dir, 'tone-renamed.wav');
  await copyFile(await toneFile(), renamed);
  assert.equal((await decodeAudioFile(renamed)).channels[0]!.length, 48000);
});

test('a stereo Opus file keeps its channels, and a file source resamples it to the rate asked for', { skip: noEncoder }, async () => {
  const path = await encodeOpus('stereo', [sine(1000, 0.5, 48000, 0.5), sine(2000, 0.5, 48000, 0.25)], 48000);
  assert.equal((await decodeAudioFile(path)).channels.length, 2);
  const source = await openFileSource(path, { sampleRate: 16000 });
  const blocks = await collect(source.blocks());
  const left = concat(blocks.map((block) => block[0]!));
  const right = concat(blocks.map((block) => block[1]!));
  assert.equal(left.length, 8000);
  assert.ok(Math.abs(zeroCrossingFrequency(left, 16000) - 1000) < 2);
  assert.ok(Math.abs(zeroCrossingFrequency(right, 16000) - 2000) < 4);
  assert.ok(Math.abs(amplitude(right) - 0.25) < 0.02, `amplitude ${amplitude(right)}`);
});

test('the feature path downmixes an Opus file to mono at the feature rate, as it does WAV and FLAC', { skip: noEncoder }, async () => {
  const path = await encodeOpus('mono-mix', [sine(500, 2, 48000, 0.4), sine(500, 2, 48000, 0.4)], 48000);
  const { samples, durationSeconds } = await loadMono(path, 16000);
  assert.equal(samples.length, 32000);
  assert.equal(durationSeconds, 2);
  assert.ok(Math.abs(rms(samples) - 0.4 / Math.SQRT2) < 0.02, `rms ${rms(samples)}`);
});

test('the output gain in the Opus header is applied, as RFC 7845 asks of every decoder', { skip: noEncoder }, async () => {
  const bytes = new Uint8Array(await readFile(await toneFile()));
  // +6.02 dB in Q7.8: twice the amplitude.
  const louder = withPagesEdited(bytes, (page, _header, body) => {
    if (page.index === 0) new DataView(body.buffer, body.byteOffset + 16, 2).setInt16(0, Math.round(20 * Math.log10(2) * 256), true);
  });
  const path = join(dir, 'gain.opus');
  await writeFile(path, louder);
  const plain = (await decodeAudioFile(await toneFile())).channels[0]!;
  const loud = (await decodeAudioFile(path)).channels[0]!;
  assert.ok(Math.abs(rms(loud) / rms(plain) - 2) < 0.01, `ratio ${rms(loud) / rms(plain)}`);
});

test('a stream whose granule positions start above 0 (cut from a live stream) decodes whole', { skip: noEncoder }, async () => {
  const bytes = new Uint8Array(await readFile(await toneFile()));
  const shifted = withPagesEdited(bytes, (page, header) => {
    if (page.index >= 2) header.setBigInt64(6, page.granule + 480_000n, true);
  });
  const path = join(dir, 'shifted.opus');
  await writeFile(path, shifted);
  assert.equal((await decodeAudioFile(path)).channels[0]!.length, 48000);
});

test('an Opus file cut in half is refused as truncated, saying how much audio its whole pages hold', { skip: noEncoder }, async () => {
  const long = await encodeOpus('long', [sine(440, 4, 16000, 0.5)], 16000);
  const whole = await readFile(long);
  const path = join(dir, 'half.opus');
  await writeFile(path, whole.subarray(0, Math.floor(whole.length / 2)));
  await rejectsNaming(path, /the file ends at byte \d+, inside Ogg page \d+, \d+ of whose \d+ bytes are missing; the whole pages before the cut hold (no audio|\d\.\d\d s of audio); the file is truncated/);
});

test('an Opus file cut between two pages is refused as truncated: its end-of-stream page is missing', { skip: noEncoder }, async () => {
  const long = await encodeOpus('long-pages', [sine(440, 4, 16000, 0.5)], 16000);
  const whole = new Uint8Array(await readFile(long));
  const pages = readOggPages(whole);
  assert.ok(pages.length >= 4, `${pages.length} pages`);
  const path = join(dir, 'cut-at-page.opus');
  await writeFile(path, whole.subarray(0, pages[pages.length - 2]!.end));
  await rejectsNaming(path, /after Ogg page \d+, without the page that ends the stream; the whole pages before the cut hold [1-9]\.\d\d s of audio; the file is truncated/);
});

test('an Opus file holding only the start of its first page is refused as truncated', { skip: noEncoder }, async () => {
  const path = join(dir, 'header-only.opus');
  await writeFile(path, (await readFile(await toneFile())).subarray(0, 20));
  await rejectsNaming(path, /inside the header of Ogg page 0; the file is truncated/);
});

test('an Opus file damaged in the middle is refused as corrupt, naming the page that fails its CRC', { skip: noEncoder }, async () => {
  const bytes = await readFile(await encodeOpus('damaged', [sine(440, 3, 16000, 0.5)], 16000));
  for (let i = Math.floor(bytes.length / 2); i < Math.floor(bytes.length / 2) + 32; i++) bytes[i]! ^= 0xa5;
  const path = join(dir, 'damaged.opus');
  await writeFile(path, bytes);
  await rejectsNaming(path, /Ogg page \d+ \(bytes \d+–\d+\) fails its CRC check: the file is damaged/);
});

test('an Opus file with a page missing from the middle is refused as corrupt, saying how many are gone', { skip: noEncoder }, async () => {
  const bytes = new Uint8Array(await readFile(await encodeOpus('gap', [sine(440, 4, 16000, 0.5)], 16000)));
  const pages = readOggPages(bytes);
  const gone = pages[3]!;
  const path = join(dir, 'gap.opus');
  await writeFile(path, concat8([bytes.subarray(0, gone.offset), bytes.subarray(gone.end)]));
  await rejectsNaming(path, /Ogg page 3 \(byte \d+\) is numbered 4, where 3 was due: 1 page\(s\) are missing, so the file is damaged/);
});

test('an Opus packet that libopus cannot decode is refused as corrupt, even inside a page whose CRC holds', { skip: noEncoder }, async () => {
  const bytes = new Uint8Array(await readFile(await toneFile()));
  // A packet of code 3 with 0 frames is invalid (RFC 6716 §3.2.5); its page's CRC is made right again.
  const broken = withPagesEdited(bytes, (page, _header, body) => {
    if (page.index !== 2) return;
    const at = packetEnds(page)[9]!;
    body[at] = body[at]! | 3;
    body[at + 1] = 0;
  });
  const path = join(dir, 'invalid-packet.opus');
  await writeFile(path, broken);
  await rejectsNaming(path, /1 Opus packet\(s\) failed to decode \(first at byte \d+: libopus -4 OPUS_INVALID_PACKET.*\); the file is corrupt/);
});

test('two Opus recordings joined into one chained file are refused, with how to split them', { skip: noEncoder }, async () => {
  const one = await readFile(await toneFile());
  const path = join(dir, 'chained.opus');
  await writeFile(path, Buffer.concat([one, one]));
  await rejectsNaming(path, /a second Ogg stream starts at byte \d+, after the first one ended: a chained file/);
});

test('an Ogg file of another codec is refused, naming the codec', { skip: noEncoder }, async () => {
  const bytes = new Uint8Array(await readFile(await toneFile()));
  const vorbis = withPagesEdited(bytes, (page, _header, body) => {
    if (page.index === 0) body.set(Buffer.from('\x01vorbis\0', 'latin1'), 0);
  });
  const path = join(dir, 'vorbis.ogg');
  await writeFile(path, vorbis);
  await rejectsNaming(path, /an Ogg file of Vorbis audio, not Opus: ser-edge reads Ogg Opus, WAV and FLAC/);
});

test('an Opus packet\'s length comes from its table-of-contents byte', () => {
  assert.equal(opusPacketSamples(Uint8Array.of((1 << 3) | 0)), 960, 'SILK 20 ms, one frame');
  assert.equal(opusPacketSamples(Uint8Array.of((3 << 3) | 1)), 2 * 2880, 'SILK 60 ms, two frames');
  assert.equal(opusPacketSamples(Uint8Array.of((13 << 3) | 2)), 2 * 960, 'hybrid 20 ms, two frames');
  assert.equal(opusPacketSamples(Uint8Array.of((16 << 3) | 3, 6)), 6 * 120, 'CELT 2.5 ms, six frames (code 3)');
  assert.equal(opusPacketSamples(new Uint8Array(0)), 0, 'an empty packet (a lost frame) is no audio');
});

function concat8(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

/** ../shared/data next to the repository, looked up from the working directory and from this file. */
function sharedDataDir(): string | undefined {
  const here = dirname(fileURLToPath(import.meta.url));
  const candidates = [resolve(process.cwd(), '../shared/data'), resolve(here, '../../../shared/data'), resolve(here, '../../shared/data')];
  return candidates.find((candidate) => existsSync(join(candidate, 'cremad-extra')));
}

const dataDir = sharedDataDir();
const expandScript = dataDir === undefined ? undefined : join(dataDir, 'expand-opus.sh');
const [opusdec, flac] = await Promise.all([findOnPath('opusdec'), findOnPath('flac')]);
const noReference =
  (dataDir === undefined && '../shared/data/cremad-extra absent: skipping the comparison with expand-opus.sh') ||
  ((opusdec === undefined || flac === undefined) && 'opusdec or flac absent (Debian: apt-get install opus-tools flac): skipping the comparison with expand-opus.sh');

test('real cremad-extra clips decode to the duration, rate and level that expand-opus.sh gives', { skip: noReference }, async () => {
  const extra = join(dataDir as string, 'cremad-extra');
  const clips = readdirSync(extra).filter((f) => f.endsWith('.opus')).sort();
  // One clip of each emotion, spread over the actors.
  const picked = ['ANG', 'DIS', 'FEA', 'HAP', 'NEU', 'SAD'].map((emotion, i) => clips.filter((c) => c.includes(`_${emotion}_`))[i * 37]!);
  const src = mkdtempSync(join(dir, 'extra-'));
  const out = mkdtempSync(join(dir, 'expanded-'));
  for (const clip of picked) await copyFile(join(extra, clip), join(src, clip));
  execFileSync(expandScript as string, [src, out], { stdio: 'pipe' });
  for (const clip of picked) {
    const ours = (await loadMono(join(extra, clip), 16000)).samples;
    const reference = (await loadMono(join(out, clip.replace(/\.opus$/, '.flac')), 16000)).samples;
    assert.equal(ours.length, reference.length, `${clip}: samples at 16 kHz`);
    const ratioDb = 20 * Math.log10(rms(ours, 0) / rms(reference, 0));
    assert.ok(Math.abs(ratioDb) < 0.5, `${clip}: level ${ratioDb.toFixed(2)} dB from opusdec's`);
    let error = 0;
    let power = 0;
    for (let i = 0; i < ours.length; i++) {
      error += (ours[i]! - reference[i]!) ** 2;
      power += reference[i]! ** 2;
    }
    // Two decoders (libopus 1.5 in wasm at 48 kHz then resampled, opus-tools' libopus at 16 kHz) differ a little; a shifted or different signal would be near 0 dB.
    assert.ok(10 * Math.log10(power / error) > 15, `${clip}: ${(10 * Math.log10(power / error)).toFixed(1)} dB from opusdec's decode`);
  }
});
