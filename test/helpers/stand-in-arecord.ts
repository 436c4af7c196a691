import { existsSync } from 'node:fs';
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { synthesiseVoice, VOICE_STYLES } from '../../src/audio/synthetic-voice.js';
import { seededRandom } from '../../src/datasets/seeded-random.js';
import { telephoneBand } from '../../src/training/augment.js';
import { s16leBytes } from './audio-fixtures.js';

/**
 * A stand-in for alsa-utils' `arecord`, for a folder a test puts first on PATH: what
 * records (the daemon's microphone sources, `ser-edge devices`, doctor's capture check)
 * is then tested without a sound card and without alsa-utils, which CI has neither of.
 * It is a POSIX sh script (CI runs it with dash) holding one capture card, and it answers
 * as arecord does:
 *
 * - `arecord -l`: the card, in arecord's words (`card N: Headset [USB Headset], device 0: …`);
 * - `arecord -D DEVICE --dump-hw-params …`: the card's hardware parameters on stderr, then
 *   arecord's complaint about its default format, exit 1;
 * - a capture (`-r RATE -c CHANNELS -t raw -f S16_LE [-D DEVICE] -`, as node-record-lpcm16
 *   asks for one): the recording given, as raw s16le on stdout, and then either the same
 *   again and again (`afterwards: 'repeat'`, a line that keeps delivering) or nothing more
 *   while the line stays open (`'hold'`), until it is stopped.
 *
 * A device other than the card's, or a rate or channel count other than the recording's,
 * fails as arecord does for a device it cannot open: the stand-in converts nothing.
 */
export interface StandInArecordOptions {
  /** The recording, one array per channel, samples in −1..1. */
  channels: Float32Array[];
  /** Its rate; default 16000. */
  rate?: number;
  /** The card's id (what `plughw:CARD=…` names) and its name; default `Headset`, `USB Headset`. */
  card?: { id: string; name: string };
  afterwards?: 'repeat' | 'hold';
}

export interface StandInArecord {
  /** The folder holding `arecord`: put it first on PATH. */
  bin: string;
  /** `bin` before `path`, for a child's PATH. */
  pathWith(path: string | undefined): string;
  /** The card's number in `arecord -l`. */
  cardNumber: number;
  /** The device string a profile names for it: `plughw:CARD={id},DEV=0`. */
  device: string;
}

/** 'text' quoted for sh. */
const quote = (text: string) => `'${text.replaceAll("'", `'\\''`)}'`;

export async function writeStandInArecord(bin: string, options: StandInArecordOptions): Promise<StandInArecord> {
  const rate = options.rate ?? 16000;
  const count = options.channels.length;
  const card = options.card ?? { id: 'Headset', name: 'USB Headset' };
  // A card number the kernel does not use here, so that no real card's /proc/asound files
  // (which `ser-edge devices` reads by number) are taken for the stand-in's.
  let cardNumber = 1;
  while (existsSync(`/proc/asound/card${cardNumber}`)) cardNumber++;
  await mkdir(bin, { recursive: true });
  const capture = join(bin, 'arecord-capture.raw');
  await writeFile(capture, s16leBytes(options.channels));
  const devices = [`plughw:CARD=${card.id},DEV=0`, `hw:CARD=${card.id},DEV=0`, `plughw:${cardNumber},0`, `hw:${cardNumber},0`, 'default'];
  const list = `**** List of CAPTURE Hardware Devices ****\ncard ${cardNumber}: ${card.id} [${card.name}], device 0: USB Audio [USB Audio]\n  Subdevices: 1/1\n  Subdevice #0: subdevice #0\n`;
  const hwParams = [
    `HW Params of device "hw:CARD=${card.id},DEV=0":`,
    '--------------------',
    'ACCESS:  MMAP_INTERLEAVED RW_INTERLEAVED',
    'FORMAT:  S16_LE',
    'SUBFORMAT:  STD',
    'SAMPLE_BITS: 16',
    `FRAME_BITS: ${16 * count}`,
    `CHANNELS: ${count}`,
    `RATE: ${rate}`,
    '--------------------',
    'arecord: set_params:1352: Sample format non available',
    'Available formats:',
    '- S16_LE',
  ].join('\n');
  const script = `#!/bin/sh
# A stand-in for alsa-utils' arecord, written by test/helpers/stand-in-arecord.ts.
device=default rate=8000 channels=1 list=no hw=no
while [ $# -gt 0 ]; do
  case "$1" in
    -l|--list-devices) list=yes ;;
    --dump-hw-params) hw=yes ;;
    -D) device=$2; shift ;;
    -r) rate=$2; shift ;;
    -c) channels=$2; shift ;;
    -f|-t|-d) shift ;;
  esac
  shift
done
if [ $list = yes ]; then
  printf '%s' ${quote(list)}
  exit 0
fi
case "$device" in
  ${devices.map(quote).join('|')}) ;;
  *) echo "arecord: main:831: audio open error: No such file or directory" >&2; exit 1 ;;
esac
if [ $hw = yes ]; then
  printf '%s\\n' ${quote(hwParams)} >&2
  exit 1
fi
if [ "$rate" != ${rate} ] || [ "$channels" != ${count} ]; then
  echo "arecord: set_params:1339: the stand-in records ${count} channel(s) at ${rate} Hz only, not $channels at $rate Hz" >&2
  exit 1
fi
# Stopped (SIGTERM, as the recorder's owner stops it), it stops the cat it runs too.
pid=
trap '[ -n "$pid" ] && kill $pid 2>/dev/null; exit 143' TERM INT
${options.afterwards === 'hold' ? `cat ${quote(capture)} & pid=$!
wait $pid
exec sleep 120` : `while :; do
  cat ${quote(capture)} & pid=$!
  wait $pid || exit 0
done`}
`;
  const binary = join(bin, 'arecord');
  await writeFile(binary, script);
  await chmod(binary, 0o755);
  return { bin, pathWith: (path) => (path ? `${bin}:${path}` : bin), cardNumber, device: devices[0]! };
}

/**
 * What a headset tap records during a test call: the caller's voice, telephone band, on
 * `callerChannel`, and on the other channel the headset microphone of an agent who stays
 * quiet (room noise about 65 dB below full scale). 16 kHz.
 */
export function headsetTap(seconds: number, callerChannel: 0 | 1): Float32Array[] {
  const caller = telephoneBand(synthesiseVoice(VOICE_STYLES.calm, seconds, 16000, 7), 16000);
  const random = seededRandom(11);
  const room = Float32Array.from({ length: caller.length }, () => (random() * 2 - 1) * 0.001);
  return callerChannel === 0 ? [caller, room] : [room, caller];
}
