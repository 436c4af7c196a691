import assert from 'node:assert/strict';
import { execFile, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { test } from 'node:test';
import {
  listCaptureDevices,
  lookUpDevice,
  nativeRate,
  parseArecordList,
  parseArecordNames,
  parseDeviceName,
  parseHwParams,
  parseProcCards,
  parseProcPcm,
  parseUsbStream,
  suggestedSource,
  type CaptureDevice,
} from '../src/audio/alsa-devices.js';
import { LevelMeter, levelBar, SILENCE_DB } from '../src/audio/level-meter.js';
import { describeListing } from '../src/commands/devices-command.js';
import { synthesiseVoice, VOICE_STYLES } from '../src/audio/synthetic-voice.js';
import { DEFAULT_FEATURE_CONFIG } from '../src/features/feature-config.js';
import { callerSide, ChannelSurvey, type ChannelSummary } from '../src/pipeline/channel-survey.js';
import { seededRandom } from '../src/datasets/seeded-random.js';
import { addNoise, telephoneBand } from '../src/training/augment.js';
import { sine, tempDir, writeWav } from './helpers/audio-fixtures.js';

const run = promisify(execFile);
const cli = fileURLToPath(new URL('../../bin/ser-edge.js', import.meta.url));
const dir = tempDir('ser-edge-devices-');

// ALSA's own output, as its tools print it. The Raspberry Pi 3 (Raspberry Pi OS, kernel
// 6.12) with a USB webcam and a Burr-Brown PCM2902 "USB Audio CODEC" (a stereo line-in,
// what a headset tap uses) is from a public alsa-info.sh report; its bcm2835 and HDMI
// cards are playback only. The headset is a C-Media CM108 "USB PnP Sound Device", the
// Jetson Nano's APE card lists its ADMAIF devices with empty names.

const PI_PROC_CARDS = ` 0 [Headphones     ]: bcm2835_headpho - bcm2835 Headphones
                      bcm2835 Headphones
 1 [Webcam         ]: USB-Audio - Dynex 1.3MP Webcam
                      Dynex Dynex 1.3MP Webcam at usb-3f980000.usb-1.2.1, high speed
 2 [CODEC          ]: USB-Audio - USB Audio CODEC
                      Burr-Brown from TI USB Audio CODEC at usb-3f980000.usb-1.2.2, full speed
 3 [vc4hdmi        ]: vc4-hdmi - vc4-hdmi
                      vc4-hdmi
`;

const PI_PROC_PCM = `00-00: bcm2835 Headphones : bcm2835 Headphones : playback 8
01-00: USB Audio : USB Audio : capture 1
02-00: USB Audio : USB Audio : playback 1 : capture 1
03-00: MAI PCM i2s-hifi-0 : MAI PCM i2s-hifi-0 : playback 1
`;

const PI_ARECORD_L = `**** List of CAPTURE Hardware Devices ****
card 1: Webcam [Dynex 1.3MP Webcam], device 0: USB Audio [USB Audio]
  Subdevices: 1/1
  Subdevice #0: subdevice #0
card 2: CODEC [USB Audio CODEC], device 0: USB Audio [USB Audio]
  Subdevices: 1/1
  Subdevice #0: subdevice #0
`;

const PCM2902_STREAM0 = `Burr-Brown from TI USB Audio CODEC at usb-3f980000.usb-1.2.2, full speed : USB Audio

Playback:
  Status: Stop
  Interface 1
    Altset 1
    Format: S16_LE
    Channels: 2
    Endpoint: 0x02 (2 OUT) (ADAPTIVE)
    Rates: 32000, 44100, 48000
    Bits: 16
  Interface 1
    Altset 2
    Format: S16_LE
    Channels: 1
    Endpoint: 0x02 (2 OUT) (ADAPTIVE)
    Rates: 32000, 44100, 48000
    Bits: 16

Capture:
  Status: Stop
  Interface 2
    Altset 1
    Format: S16_LE
    Channels: 2
    Endpoint: 0x86 (6 IN) (ASYNC)
    Rates: 8000, 11025, 16000, 22050, 32000, 44100, 48000
    Bits: 16
  Interface 2
    Altset 2
    Format: S16_LE
    Channels: 1
    Endpoint: 0x86 (6 IN) (ASYNC)
    Rates: 8000, 11025, 16000, 22050, 32000, 44100, 48000
    Bits: 16
`;

const CM108_STREAM0 = `C-Media Electronics Inc. USB PnP Sound Device at usb-0000:01:00.0-1.3, full speed : USB Audio

Playback:
  Status: Stop
  Interface 1
    Altset 1
    Format: S16_LE
    Channels: 2
    Endpoint: 0x01 (1 OUT) (ADAPTIVE)
    Rates: 48000, 44100
    Bits: 16
    Channel map: FL FR

Capture:
  Status: Running
    Interface = 2
    Altset = 1
    Packet Size = 100
    Momentary freq = 48000 Hz (0x30.0000)
  Interface 2
    Altset 1
    Format: S16_LE
    Channels: 1
    Endpoint: 0x82 (2 IN) (ASYNC)
    Rates: 48000, 44100
    Bits: 16
    Channel map: MONO
`;

const CODEC_HW_PARAMS = `Recording raw data '/dev/null' : Unsigned 8 bit, Rate 8000 Hz, Mono
HW Params of device "hw:CARD=CODEC,DEV=0":
--------------------
ACCESS:  MMAP_INTERLEAVED RW_INTERLEAVED
FORMAT:  S16_LE
SUBFORMAT:  STD
SAMPLE_BITS: 16
FRAME_BITS: [16 32]
CHANNELS: [1 2]
RATE: [8000 48000]
PERIOD_TIME: [1000 1000000]
PERIOD_SIZE: [8 48000]
PERIOD_BYTES: [32 192000]
PERIODS: [2 1024]
BUFFER_TIME: [1000 2000000]
BUFFER_SIZE: [16 96000]
BUFFER_BYTES: [64 384000]
TICK_TIME: ALL
--------------------
arecord: set_params:1352: Sample format non available
Available formats:
- S16_LE
`;

const JETSON_ARECORD_L = `**** List of CAPTURE Hardware Devices ****
card 1: tegrasndt210ref [tegra-snd-t210ref-mobile-rt565x], device 0: ADMAIF1 CIF ADMAIF1-0 []
  Subdevices: 1/1
  Subdevice #0: subdevice #0
card 1: tegrasndt210ref [tegra-snd-t210ref-mobile-rt565x], device 1: ADMAIF2 CIF ADMAIF2-1 []
  Subdevices: 1/1
  Subdevice #0: subdevice #0
`;

const APE_HW_PARAMS = `HW Params of device "hw:CARD=tegrasndt210ref,DEV=0":
--------------------
ACCESS:  MMAP_INTERLEAVED RW_INTERLEAVED
FORMAT:  S8 S16_LE S24_LE S32_LE
SUBFORMAT:  STD
SAMPLE_BITS: [8 32]
FRAME_BITS: [8 512]
CHANNELS: [1 16]
RATE: (7999 192001)
PERIOD_TIME: (20 8192000]
`;

const ARECORD_CAPITAL_L = `null
    Discard all samples (playback) or generate zero samples (capture)
hw:CARD=CODEC,DEV=0
    USB Audio CODEC, USB Audio
    Direct hardware device without any conversions
plughw:CARD=CODEC,DEV=0
    USB Audio CODEC, USB Audio
    Hardware device with all software conversions
sysdefault:CARD=CODEC
    USB Audio CODEC, USB Audio
    Default Audio Device
`;

function deviceFrom(entry: ReturnType<typeof parseArecordList>[number], capabilities: CaptureDevice['capabilities']): CaptureDevice {
  return { ...entry, profileDevice: `plughw:CARD=${entry.cardId},DEV=${entry.device}`, hwDevice: `hw:CARD=${entry.cardId},DEV=${entry.device}`, capabilities, note: null };
}

test('arecord -l on a Raspberry Pi names each capture device with its card id, the stable part of the device string', () => {
  assert.deepEqual(parseArecordList(PI_ARECORD_L), [
    { card: 1, cardId: 'Webcam', cardName: 'Dynex 1.3MP Webcam', device: 0, deviceName: 'USB Audio' },
    { card: 2, cardId: 'CODEC', cardName: 'USB Audio CODEC', device: 0, deviceName: 'USB Audio' },
  ]);
});

test('arecord -l is read by the shape of its lines, so empty device names and translated words still parse', () => {
  const jetson = parseArecordList(JETSON_ARECORD_L);
  assert.deepEqual(
    jetson.map((e) => [e.cardId, e.device, e.deviceName]),
    [
      ['tegrasndt210ref', 0, 'ADMAIF1 CIF ADMAIF1-0'],
      ['tegrasndt210ref', 1, 'ADMAIF2 CIF ADMAIF2-1'],
    ],
  );
  const japanese = parseArecordList('カード 1: U0x46d0x825 [USB Device 0x46d:0x825], デバイス 0: USB Audio [USB Audio]\n サブデバイス: 1/1\n');
  assert.deepEqual(japanese, [{ card: 1, cardId: 'U0x46d0x825', cardName: 'USB Device 0x46d:0x825', device: 0, deviceName: 'USB Audio' }]);
});

test("/proc/asound lists the Pi's built-in cards too, which are playback only", () => {
  const cards = parseProcCards(PI_PROC_CARDS);
  assert.deepEqual(
    cards.map((c) => [c.card, c.id, c.driver, c.name]),
    [
      [0, 'Headphones', 'bcm2835_headpho', 'bcm2835 Headphones'],
      [1, 'Webcam', 'USB-Audio', 'Dynex 1.3MP Webcam'],
      [2, 'CODEC', 'USB-Audio', 'USB Audio CODEC'],
      [3, 'vc4hdmi', 'vc4-hdmi', 'vc4-hdmi'],
    ],
  );
  assert.equal(cards[2]!.longName, 'Burr-Brown from TI USB Audio CODEC at usb-3f980000.usb-1.2.2, full speed');
  const pcms = parseProcPcm(PI_PROC_PCM);
  assert.deepEqual(
    pcms.filter((p) => p.capture).map((p) => [p.card, p.device]),
    [
      [1, 0],
      [2, 0],
    ],
  );
  assert.equal(pcms.find((p) => p.card === 0)!.playback, true);
});

test("a USB device's stream file gives the capture side's exact rates and channel counts, not the playback side's", () => {
  const codec = parseUsbStream(PCM2902_STREAM0)!;
  assert.deepEqual(codec.channels, { min: 1, max: 2 });
  assert.deepEqual(codec.rateList, [8000, 11025, 16000, 22050, 32000, 44100, 48000]);
  assert.deepEqual(codec.formats, ['S16_LE']);
  const headset = parseUsbStream(CM108_STREAM0)!;
  assert.deepEqual(headset.channels, { min: 1, max: 1 });
  assert.deepEqual(headset.rateList, [44100, 48000]);
  assert.equal(parseUsbStream('Something : USB Audio\n\nPlayback:\n  Status: Stop\n    Channels: 2\n'), null, 'no capture side');
  const continuous = parseUsbStream('X : USB Audio\n\nCapture:\n  Interface 1\n    Format: S16_LE\n    Channels: 2\n    Rates: 8000 - 96000 (continuous)\n');
  assert.deepEqual([continuous!.rates, continuous!.rateList], [{ min: 8000, max: 96000 }, null]);
});

test("arecord --dump-hw-params gives the channel and rate ranges, with alsa-lib's open interval ends", () => {
  const codec = parseHwParams(CODEC_HW_PARAMS)!;
  assert.deepEqual([codec.channels, codec.rates, codec.formats], [{ min: 1, max: 2 }, { min: 8000, max: 48000 }, ['S16_LE']]);
  const ape = parseHwParams(APE_HW_PARAMS)!;
  assert.deepEqual([ape.channels, ape.rates], [{ min: 1, max: 16 }, { min: 8000, max: 192000 }]);
  assert.deepEqual(ape.formats, ['S8', 'S16_LE', 'S24_LE', 'S32_LE']);
  assert.equal(parseHwParams('arecord: main:831: audio open error: Device or resource busy\n'), null);
});

test('arecord -L gives each PCM name with its description', () => {
  const names = parseArecordNames(ARECORD_CAPITAL_L);
  assert.deepEqual(
    names.map((n) => n.name),
    ['null', 'hw:CARD=CODEC,DEV=0', 'plughw:CARD=CODEC,DEV=0', 'sysdefault:CARD=CODEC'],
  );
  assert.equal(names[2]!.description, 'USB Audio CODEC, USB Audio, Hardware device with all software conversions');
});

test('device strings are understood in every form a profile may use, and looked up against the listing', () => {
  assert.deepEqual(parseDeviceName('plughw:CARD=Headset,DEV=0'), { plugin: 'plughw', card: 'Headset', device: 0 });
  assert.deepEqual(parseDeviceName('hw:2,0'), { plugin: 'hw', card: '2', device: 0 });
  assert.deepEqual(parseDeviceName('hw:CODEC'), { plugin: 'hw', card: 'CODEC', device: 0 });
  assert.deepEqual(parseDeviceName('plughw:1,1,0'), { plugin: 'plughw', card: '1', device: 1 });
  assert.equal(parseDeviceName('default'), null);
  assert.equal(parseDeviceName('dsnoop:CARD=CODEC'), null);

  const entries = parseArecordList(PI_ARECORD_L);
  const listing = { devices: [deviceFrom(entries[0]!, null), deviceFrom(entries[1]!, parseUsbStream(PCM2902_STREAM0))], cards: parseProcCards(PI_PROC_CARDS) };
  const found = lookUpDevice('plughw:CARD=CODEC,DEV=0', listing);
  assert.equal(found.status, 'found');
  assert.equal(lookUpDevice('hw:2,0', listing).status, 'found', 'by card number');
  const headset = lookUpDevice('plughw:CARD=Headset,DEV=0', listing);
  assert.equal(headset.status, 'missing');
  assert.match((headset as { reason: string }).reason, /no sound card "Headset"; capture devices here: plughw:CARD=Webcam,DEV=0, plughw:CARD=CODEC,DEV=0/);
  assert.match((lookUpDevice('plughw:CARD=Headphones,DEV=0', listing) as { reason: string }).reason, /card Headphones \(bcm2835 Headphones\) has no capture device/);
  assert.match((lookUpDevice('hw:CARD=CODEC,DEV=1', listing) as { reason: string }).reason, /card CODEC has no capture device 1/);
  assert.equal(lookUpDevice('default', listing).status, 'unknown');
});

test("the suggested source opens every channel a device has, and captures at its native rate when it lacks the model's", () => {
  const [webcam, codec] = parseArecordList(PI_ARECORD_L);
  assert.deepEqual(suggestedSource(deviceFrom(codec!, parseUsbStream(PCM2902_STREAM0))), { type: 'microphone', device: 'plughw:CARD=CODEC,DEV=0', channelCount: 2 });
  assert.deepEqual(suggestedSource(deviceFrom(webcam!, parseUsbStream(CM108_STREAM0))), { type: 'microphone', device: 'plughw:CARD=Webcam,DEV=0', channelCount: 1, inputRate: 48000 });
  assert.equal(nativeRate(parseHwParams(CODEC_HW_PARAMS), 16000), 16000, 'a continuous range that holds 16 kHz');
  assert.equal(nativeRate(null, 16000), null);
});

test('levels are in dBFS: a full-scale sine reads −3 dBFS RMS and 0 dBFS peak, zeros read as digital silence', () => {
  const meter = new LevelMeter();
  const level = meter.push(sine(1000, 0.1, 16000, 1));
  assert.ok(Math.abs(level.rmsDb + 3.01) < 0.05, `rms ${level.rmsDb}`);
  assert.ok(level.peakDb > -0.01, `peak ${level.peakDb}`);
  assert.ok(meter.clippedShare > 0, 'full-scale samples count as clipped');
  const quiet = new LevelMeter();
  assert.equal(quiet.push(new Float32Array(1600)).rmsDb, SILENCE_DB);
  assert.equal(levelBar(-30, 20), '██████████··········');
  assert.equal(levelBar(-90, 10), '··········');
  assert.equal(levelBar(-30, 20, { peakDb: -6 }), '██████████·······|··');
});

function summary(overrides: Partial<ChannelSummary> & { index: number }): ChannelSummary {
  return { seconds: 10, speechSeconds: 0, speechShare: 0, windows: 0, rmsDb: -70, peakDb: -60, clippedShare: 0, highBandShare: null, band: null, ...overrides };
}

test('with speech on both channels, the band-limited one is the caller\'s', () => {
  const verdict = callerSide([
    summary({ index: 0, speechSeconds: 4, speechShare: 0.4, highBandShare: 0.02, band: 'wideband' }),
    summary({ index: 1, speechSeconds: 3, speechShare: 0.3, highBandShare: 0.00001, band: 'telephone' }),
  ]);
  assert.deepEqual([verdict.customer, verdict.agent, verdict.confidence], [1, 0, 'clear']);
});

test("a one-channel device carries one direction: a phone-band voice is the caller's, a full-band one is not taken for it", () => {
  const phone = callerSide([summary({ index: 0, speechSeconds: 5, speechShare: 0.5, highBandShare: 0.00001, band: 'telephone' })]);
  assert.deepEqual([phone.customer, phone.agent, phone.confidence], [0, null, 'clear']);
  const microphone = callerSide([summary({ index: 0, speechSeconds: 5, speechShare: 0.5, highBandShare: 0.02, band: 'wideband' })]);
  assert.deepEqual([microphone.customer, microphone.confidence], [null, 'none']);
  assert.match(microphone.reasons.join(' '), /the headset microphone, the agent side/);
});

test('without enough speech on any channel there is no verdict, and the reason says what to do', () => {
  const verdict = callerSide([summary({ index: 0, speechSeconds: 0.3, speechShare: 0.03 }), summary({ index: 1 })]);
  assert.equal(verdict.customer, null);
  assert.equal(verdict.confidence, 'none');
  assert.match(verdict.reasons.join(' '), /no channel heard enough speech .*listen again during a test call/);
});

test("the survey hears the band of each channel's speech: a phone line's stops at 3.4 kHz, a bright voice in a room does not", () => {
  const sampleRate = 16000;
  const caller = telephoneBand(synthesiseVoice(VOICE_STYLES.calm, 6, sampleRate, 3), sampleRate);
  const agent = addNoise(synthesiseVoice(VOICE_STYLES.angry, 6, sampleRate, 4), 25, 9);
  const survey = new ChannelSurvey({ features: DEFAULT_FEATURE_CONFIG, channelCount: 2 });
  for (let at = 0; at < caller.length; at += 1600) survey.push([caller.subarray(at, at + 1600), agent.subarray(at, at + 1600)]);
  survey.end();
  const [c0, c1] = survey.summary();
  assert.equal(c0!.band, 'telephone', `caller high band ${c0!.highBandShare}`);
  assert.equal(c1!.band, 'wideband', `agent high band ${c1!.highBandShare}`);
  assert.ok(c0!.speechShare > 0.5 && c1!.speechShare > 0.5, 'both talk');
  assert.equal(callerSide(survey.summary(), survey.identicalPairs()).customer, 0);
});

/** A tap recording: the caller (telephone band) on `callerChannel`, the other channel a quiet headset microphone. */
async function writeTap(name: string, callerChannel: 0 | 1, seconds = 8): Promise<string> {
  const sampleRate = 16000;
  const caller = telephoneBand(synthesiseVoice(VOICE_STYLES.calm, seconds, sampleRate, 7), sampleRate);
  // The headset microphone of a quiet agent: room noise around −65 dBFS.
  const random = seededRandom(11);
  const room = Float32Array.from({ length: caller.length }, () => (random() * 2 - 1) * 0.001);
  const channels = callerChannel === 0 ? [caller, room] : [room, caller];
  return writeWav(join(dir, name), channels, sampleRate, '16');
}

test('listening to a two-channel tap names the channel with the speech as the caller\'s side', async () => {
  const wav = await writeTap('tap-right.wav', 1);
  const { stdout } = await run(process.execPath, [cli, 'devices', '--listen', `file:${wav}`, '--json']);
  const result = JSON.parse(stdout) as {
    seconds: number;
    channels: ChannelSummary[];
    verdict: { customer: number | null; agent: number | null; confidence: string; reasons: string[] };
    mapping: { index: number; role: string }[];
  };
  assert.equal(result.seconds, 8);
  assert.deepEqual([result.verdict.customer, result.verdict.agent, result.verdict.confidence], [1, 0, 'clear'], result.verdict.reasons.join('\n'));
  assert.ok(result.channels[1]!.speechShare > 0.5 && result.channels[0]!.speechShare < 0.05, JSON.stringify(result.channels));
  assert.ok(result.channels[1]!.windows > 0, 'the model would judge windows of the caller');
  assert.deepEqual(
    result.mapping.map((m) => [m.index, m.role]),
    [
      [0, 'agent'],
      [1, 'customer'],
    ],
  );
});

test('listening without --json prints a line per second, the verdict with its reasons, and the channels for the config', async () => {
  const wav = await writeTap('tap-left.wav', 0, 4);
  const { stdout } = await run(process.execPath, [cli, 'devices', '--listen', `file:${wav}`]);
  const perSecond = stdout.split('\n').filter((l) => /^\s+\d+\.0 s {2}ch0 /.test(l));
  assert.equal(perSecond.length, 4, stdout);
  assert.match(stdout, /ch0 -\d+\.\d dBFS peak -\d+\.\d dBFS speech \| ch1 -\d+\.\d dBFS peak -\d+\.\d dBFS quiet/);
  assert.match(stdout, /Caller's side: channel 0 — map it as "customer", channel 1 as "agent" \(clear\)\./);
  assert.match(stdout, /only channel 0 heard speech/);
  assert.match(stdout, /"channels": \[\{"index":0,"id":"desk-1-customer","role":"customer"\},\{"index":1,"id":"desk-1-agent","role":"agent"\}\]/);
});

test('raw PCM on stdin is listened to with the rate and channels given, and --seconds stops it', async () => {
  const sampleRate = 16000;
  const caller = telephoneBand(synthesiseVoice(VOICE_STYLES.calm, 6, sampleRate, 7), sampleRate);
  const pcm = Buffer.alloc(caller.length * 4);
  for (let i = 0; i < caller.length; i++) {
    pcm.writeInt16LE(0, i * 4);
    pcm.writeInt16LE(Math.round(caller[i]! * 32767), i * 4 + 2);
  }
  const child = spawn(process.execPath, [cli, 'devices', '--listen', '-', '--rate', '16000', '--channels', '2', '--seconds', '5', '--json'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  child.stdin.on('error', () => {}); // it stops reading after 5 s of audio
  child.stdin.end(pcm);
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  assert.equal(code, 0, err);
  const result = JSON.parse(out) as { seconds: number; verdict: { customer: number | null }; identicalChannels: unknown[] };
  assert.equal(result.seconds, 5);
  assert.equal(result.verdict.customer, 1);
});

test('a stream that ends before any audio exits 1 saying so', async () => {
  const result = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
    const child = spawn(process.execPath, [cli, 'devices', '--listen', '-', '--rate', '16000'], { stdio: ['pipe', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdin.end();
    child.once('exit', (code) => resolve({ code, stderr }));
  });
  assert.equal(result.code, 1);
  assert.match(result.stderr, /stdin ended before any audio arrived/);
});

test('one signal on both channels (a mono device opened as stereo) gets no verdict but the reason', async () => {
  const voice = synthesiseVoice(VOICE_STYLES.calm, 4, 16000, 5);
  const wav = await writeWav(join(dir, 'copied.wav'), [voice, voice], 16000, '16');
  const { stdout } = await run(process.execPath, [cli, 'devices', '--listen', `file:${wav}`, '--json']);
  const result = JSON.parse(stdout) as { identicalChannels: number[][]; verdict: { customer: number | null; reasons: string[] }; mapping: unknown };
  assert.deepEqual(result.identicalChannels, [[0, 1]]);
  assert.equal(result.verdict.customer, null);
  assert.equal(result.mapping, null);
  assert.match(result.verdict.reasons[0]!, /channels 0 and 1 carry the same signal: the device is probably mono/);
});

const soundCards = existsSync('/proc/asound/cards') && readFileSync('/proc/asound/cards', 'utf8').trim() !== '' && !/no soundcards/.test(readFileSync('/proc/asound/cards', 'utf8'));
const noCards = soundCards ? 'this machine has sound cards (see /proc/asound/cards): the no-card answer cannot be checked here' : false;

test('on a machine without sound cards, devices says so, says what to check, and exits 0', { skip: noCards }, async () => {
  const { stdout } = await run(process.execPath, [cli, 'devices']);
  assert.match(stdout, /^No capture devices: ALSA sees no sound card on this machine[ .]/);
  assert.match(stdout, /`lsusb` lists it/);
  assert.match(stdout, /`audio` group/);
  const json = JSON.parse((await run(process.execPath, [cli, 'devices', '--json'])).stdout) as { devices: unknown[]; message: string; hints: string[] };
  assert.deepEqual(json.devices, []);
  assert.match(json.message, /No capture devices/);
  assert.ok(json.hints.some((h) => /audio` group/.test(h)));
});

test('listening to a card that is not there exits 1 naming it, before any recorder starts', { skip: noCards }, async () => {
  const result = await run(process.execPath, [cli, 'devices', '--listen', 'plughw:CARD=Nowhere,DEV=0', '--seconds', '2']).then(
    () => ({ code: 0, stderr: '' }),
    (error: { code: number; stderr: string }) => error,
  );
  assert.equal(result.code, 1);
  assert.match(result.stderr, /ser-edge devices: plughw:CARD=Nowhere,DEV=0: no sound card "Nowhere"; capture devices here: none; `ser-edge devices` lists/);
});

test("a device ALSA cannot open stops the listening with the recorder's own words", { skip: noCards }, async () => {
  const result = await run(process.execPath, [cli, 'devices', '--listen', 'default', '--seconds', '2']).then(
    () => ({ code: 0, stderr: '' }),
    (error: { code: number; stderr: string }) => error,
  );
  assert.equal(result.code, 1);
  const hasArecord = spawnSync('sh', ['-c', 'command -v arecord']).status === 0;
  assert.match(result.stderr, hasArecord ? /^ser-edge devices: mic:default: recorder arecord exited with code 1: arecord: .*audio open error: .*; check the headset is plugged in/m : /install it with `apt-get install alsa-utils`/);
  assert.doesNotMatch(result.stderr, /will be retried|ALSA lib/, "alsa-lib's trace lines and the daemon's retry note are left out");
  assert.equal(result.stderr.trim().split('\n').length, 1, 'one line');
});

test("without arecord's list, the kernel's /proc/asound still names the capture devices, with the USB ones' exact rates", { skip: noCards }, async () => {
  const proc = join(dir, 'proc-asound');
  mkdirSync(join(proc, 'card1'), { recursive: true });
  mkdirSync(join(proc, 'card2'), { recursive: true });
  writeFileSync(join(proc, 'cards'), PI_PROC_CARDS);
  writeFileSync(join(proc, 'pcm'), PI_PROC_PCM);
  writeFileSync(join(proc, 'card1', 'stream0'), CM108_STREAM0);
  writeFileSync(join(proc, 'card2', 'stream0'), PCM2902_STREAM0);
  const listing = await listCaptureDevices({ procDir: proc, probeCapabilities: false });
  assert.deepEqual(
    listing.devices.map((d) => [d.profileDevice, d.capabilities?.channels?.max, d.capabilities?.rateList?.includes(16000)]),
    [
      ['plughw:CARD=Webcam,DEV=0', 1, false],
      ['plughw:CARD=CODEC,DEV=0', 2, true],
    ],
  );
  const text = describeListing(listing);
  assert.match(text, /^Capture devices \(ALSA\), 2:/);
  assert.match(text, /card 2, device 0: USB Audio CODEC — USB Audio\n {6}channels 1–2, rates 8000, 11025, 16000, 22050, 32000, 44100, 48000 Hz, formats S16_LE\n {6}device: plughw:CARD=CODEC,DEV=0\n {6}source: \{"type":"microphone","device":"plughw:CARD=CODEC,DEV=0","channelCount":2\}/);
  assert.match(text, /source: \{"type":"microphone","device":"plughw:CARD=Webcam,DEV=0","channelCount":1,"inputRate":48000\}/);
  assert.match(text, /Also here, playback only: Headphones \(bcm2835 Headphones\), vc4hdmi \(vc4-hdmi\)\./);
  assert.match(text, /To see which channel carries the caller: ser-edge devices --listen plughw:CARD=Webcam,DEV=0/);
});

test('usage errors exit 2 with a line naming the option', async () => {
  for (const [args, message] of [
    [['--listen', '-'], /--listen - reads raw s16le PCM from stdin and needs its rate: add --rate HZ/],
    [['--seconds', '3'], /--seconds applies to --listen only/],
    [['--listen', 'plughw:CARD=X,DEV=0', '--realtime'], /--realtime applies to --listen file:PATH only/],
    [['--listen', 'file:x.wav', '--channels', '2'], /--rate and --channels do not apply to a file/],
    [['--listen', 'file:x.wav', '--seconds', '-1'], /--seconds <n>' argument '-1' is invalid/],
    [['--bogus'], /unknown option '--bogus'/],
  ] as const) {
    const result = await run(process.execPath, [cli, 'devices', ...args]).then(
      () => ({ code: 0, stderr: '' }),
      (error: { code: number; stderr: string }) => error,
    );
    assert.equal(result.code, 2, `${args.join(' ')}: ${result.stderr}`);
    assert.match(result.stderr, message);
  }
});
