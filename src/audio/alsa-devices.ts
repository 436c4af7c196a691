import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { findOnPath } from './microphone-source.js';

/**
 * What ALSA says about the capture devices on this machine, for `ser-edge devices` and
 * `ser-edge doctor`: the cards, their capture PCMs, the channel counts and rates each
 * takes, and the device string a profile's `device` should hold.
 *
 * Sources, each parsed on its own so a machine missing one still gets an answer:
 * `arecord -l` (names, as the installer will see them), /proc/asound/cards and
 * /proc/asound/pcm (what the kernel sees, also without alsa-utils or without permission
 * to open the cards), /proc/asound/cardN/streamD (USB devices: the exact rates, readable
 * while the device is busy) and `arecord --dump-hw-params` (the rest).
 */

/** A card as /proc/asound/cards lists it, capture or not. */
export interface AlsaCard {
  card: number;
  /** The short id (`Headset`, `CODEC`): stable across reboots and USB plug order, unlike the number. */
  id: string;
  driver: string;
  name: string;
  longName: string;
}

/** One PCM device as /proc/asound/pcm lists it. */
export interface AlsaPcm {
  card: number;
  device: number;
  id: string;
  name: string;
  playback: boolean;
  capture: boolean;
}

/** One capture device as `arecord -l` names it. */
export interface ArecordEntry {
  card: number;
  cardId: string;
  cardName: string;
  device: number;
  deviceName: string;
}

/** A closed range of whole numbers; min === max for a single value. */
export interface ValueRange {
  min: number;
  max: number;
}

/** What a capture device accepts: from its USB stream descriptor or its hardware parameters. */
export interface CaptureCapabilities {
  channels: ValueRange | null;
  rates: ValueRange | null;
  /** The discrete rates, where the device lists them (USB audio); null for a continuous range. */
  rateList: number[] | null;
  formats: string[];
  /** `usb-stream` (/proc/asound/cardN/streamD) or `hw-params` (arecord --dump-hw-params). */
  from: 'usb-stream' | 'hw-params';
}

export interface CaptureDevice {
  card: number;
  cardId: string;
  cardName: string;
  device: number;
  deviceName: string;
  /** For a profile's `device`: the plug layer converts format and rate, and the card id survives reboots. */
  profileDevice: string;
  /** The raw hardware device, for `arecord -D` tests without conversion. */
  hwDevice: string;
  capabilities: CaptureCapabilities | null;
  /** Why capabilities are missing (device busy, arecord missing, …). */
  note: string | null;
}

export interface CaptureListing {
  devices: CaptureDevice[];
  /** Every card the kernel sees, capture or not (a Pi's built-in audio is playback only). */
  cards: AlsaCard[];
  /** arecord's path, or null when alsa-utils is not installed. */
  arecord: string | null;
  /** What `arecord -l` said when it listed nothing (e.g. `no soundcards found...`). */
  arecordMessage: string | null;
  /** Whether /proc/asound exists: without it the kernel has no sound driver loaded at all. */
  procAsound: boolean;
}

/** The kernel's view, one entry per card (two lines each). */
export function parseProcCards(text: string): AlsaCard[] {
  const cards: AlsaCard[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    // " 1 [Headset        ]: USB-Audio - Logitech USB Headset"
    const m = /^\s*(\d+)\s+\[([^\]]*)\]:\s*(.*?)\s+-\s+(.*)$/.exec(lines[i]!);
    if (!m) continue;
    const next = lines[i + 1];
    const longName = next !== undefined && /^\s{4,}\S/.test(next) && !/^\s*\d+\s+\[/.test(next) ? next.trim() : m[4]!.trim();
    cards.push({ card: Number(m[1]), id: m[2]!.trim(), driver: m[3]!.trim(), name: m[4]!.trim(), longName });
  }
  return cards;
}

/** `01-00: USB Audio : USB Audio : playback 1 : capture 1` per PCM device. */
export function parseProcPcm(text: string): AlsaPcm[] {
  const pcms: AlsaPcm[] = [];
  for (const line of text.split('\n')) {
    const m = /^(\d+)-(\d+):\s*(.*)$/.exec(line.trim());
    if (!m) continue;
    const fields = m[3]!.split(' : ').map((f) => f.trim());
    const streams = fields.filter((f) => /^(playback|capture) \d+$/.test(f));
    const names = fields.filter((f) => !/^(playback|capture) \d+$/.test(f));
    pcms.push({
      card: Number(m[1]),
      device: Number(m[2]),
      id: names[0] ?? '',
      name: names[1] ?? names[0] ?? '',
      playback: streams.some((s) => s.startsWith('playback')),
      capture: streams.some((s) => s.startsWith('capture')),
    });
  }
  return pcms;
}

/**
 * `arecord -l`. The words "card" and "device" are translated under other locales
 * (`カード 1: …, デバイス 0: …`), so the pattern keys on the shape of the line, not its words.
 */
export function parseArecordList(text: string): ArecordEntry[] {
  const entries: ArecordEntry[] = [];
  for (const line of text.split('\n')) {
    // "card 1: Headset [Logitech USB Headset], device 0: USB Audio [USB Audio]"
    const m = /^\S+\s+(\d+):\s+(\S+)\s+\[(.*?)\],\s+\S+\s+(\d+):\s+(.*?)\s*\[(.*)\]\s*$/.exec(line.trim());
    if (!m) continue;
    const deviceName = m[6]!.trim() || m[5]!.trim();
    entries.push({ card: Number(m[1]), cardId: m[2]!, cardName: m[3]!.trim(), device: Number(m[4]), deviceName });
  }
  return entries;
}

/** `arecord -L`: the PCM names (unindented lines), each with its description (the indented lines after it). */
export function parseArecordNames(text: string): { name: string; description: string }[] {
  const names: { name: string; description: string }[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    if (/^\s/.test(line)) {
      const last = names[names.length - 1];
      if (last) last.description = last.description ? `${last.description}, ${line.trim()}` : line.trim();
    } else {
      names.push({ name: line.trim(), description: '' });
    }
  }
  return names;
}

/**
 * The capture side of a USB audio stream file (/proc/asound/cardN/streamD): every alternate
 * setting's format, channels and rates, merged. `Rates: 8000, 16000, 48000` or
 * `Rates: 8000 - 48000 (continuous)`.
 */
export function parseUsbStream(text: string): CaptureCapabilities | null {
  const at = text.search(/^Capture:/m);
  if (at < 0) return null;
  const rest = text.slice(at + 'Capture:'.length);
  const end = rest.search(/^\S/m);
  const capture = end < 0 ? rest : rest.slice(0, end);
  const channels: number[] = [];
  const formats = new Set<string>();
  const rates = new Set<number>();
  let continuous: ValueRange | null = null;
  for (const raw of capture.split('\n')) {
    const line = raw.trim();
    let m: RegExpExecArray | null;
    if ((m = /^Format:\s*(.+)$/.exec(line))) {
      for (const f of m[1]!.split(/[\s,]+/)) if (f) formats.add(f);
    } else if ((m = /^Channels:\s*(\d+)/.exec(line))) channels.push(Number(m[1]));
    else if ((m = /^Rates:\s*(\d+)\s*-\s*(\d+)\s*\(continuous\)/.exec(line))) {
      const range = { min: Number(m[1]), max: Number(m[2]) };
      continuous = continuous ? { min: Math.min(continuous.min, range.min), max: Math.max(continuous.max, range.max) } : range;
    } else if ((m = /^Rates:\s*(.+)$/.exec(line))) {
      for (const r of m[1]!.split(',')) if (/^\s*\d+\s*$/.test(r)) rates.add(Number(r));
    }
  }
  if (channels.length === 0) return null;
  const list = [...rates].sort((a, b) => a - b);
  const listRange = list.length ? { min: list[0]!, max: list[list.length - 1]! } : null;
  const range = continuous && listRange ? { min: Math.min(continuous.min, listRange.min), max: Math.max(continuous.max, listRange.max) } : (continuous ?? listRange);
  return {
    channels: { min: Math.min(...channels), max: Math.max(...channels) },
    rates: range,
    rateList: continuous === null && list.length ? list : null,
    formats: [...formats],
    from: 'usb-stream',
  };
}

/**
 * `arecord --dump-hw-params` (printed on stderr before it tries to record): `CHANNELS: [1 2]`,
 * `RATE: [8000 48000]`, `RATE: 48000`, `FORMAT:  S16_LE S24_3LE`. alsa-lib prints an interval
 * as a value, `[a b]`, with `(` or `)` for an open end, or `ALL`.
 */
export function parseHwParams(text: string): CaptureCapabilities | null {
  const fields = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = /^([A-Z_]+):\s*(.*?)\s*$/.exec(line);
    if (m) fields.set(m[1]!, m[2]!);
  }
  if (!fields.has('CHANNELS') && !fields.has('RATE')) return null;
  return {
    channels: parseInterval(fields.get('CHANNELS')),
    rates: parseInterval(fields.get('RATE')),
    rateList: null,
    formats: (fields.get('FORMAT') ?? '').split(/\s+/).filter(Boolean),
    from: 'hw-params',
  };
}

function parseInterval(value: string | undefined): ValueRange | null {
  if (value === undefined) return null;
  const single = /^(\d+)$/.exec(value);
  if (single) return { min: Number(single[1]), max: Number(single[1]) };
  const m = /^([[(])\s*(\d+)\s+(\d+)\s*([\])])$/.exec(value);
  if (!m) return null;
  // An open end excludes its bound; these are whole numbers, so the next one is in.
  const min = Number(m[2]) + (m[1] === '(' ? 1 : 0);
  const max = Number(m[3]) - (m[4] === ')' ? 1 : 0);
  return min <= max ? { min, max } : null;
}

/** A device string taken apart: `plughw:CARD=Headset,DEV=0`, `hw:1,0`, `hw:CODEC`, `plughw:2`. */
export interface ParsedDeviceName {
  plugin: 'hw' | 'plughw';
  /** A card number or id. */
  card: string;
  device: number;
}

export function parseDeviceName(name: string): ParsedDeviceName | null {
  const m = /^(plughw|hw):(.*)$/.exec(name.trim());
  if (!m) return null;
  const args = m[2]!.split(',').map((a) => a.trim());
  let card: string | undefined;
  let device = 0;
  for (const [i, arg] of args.entries()) {
    const kv = /^(CARD|DEV)=(.*)$/i.exec(arg);
    if (kv) {
      if (kv[1]!.toUpperCase() === 'CARD') card = kv[2]!.replace(/^"|"$/g, '');
      else if (/^\d+$/.test(kv[2]!)) device = Number(kv[2]);
      else return null;
    } else if (i === 0) {
      card = arg.replace(/^"|"$/g, '');
    } else if (i === 1 && /^\d+$/.test(arg)) {
      device = Number(arg);
    } else if (i > 1 && /^\d+$/.test(arg)) {
      // SUBDEV: not part of which device it is.
    } else {
      return null;
    }
  }
  if (card === undefined || card === '') return null;
  return { plugin: m[1] as 'hw' | 'plughw', card, device };
}

/**
 * Which listed device a configured `device` string names: `found`, `missing` (it names a
 * card or device that is not there, with what is), or `unknown` (a name such as `default`
 * or an .asoundrc PCM, which only a capture can tell).
 */
export type DeviceLookup =
  | { status: 'found'; device: CaptureDevice }
  | { status: 'missing'; reason: string }
  | { status: 'unknown' };

export function lookUpDevice(name: string, listing: Pick<CaptureListing, 'devices' | 'cards'>): DeviceLookup {
  const parsed = parseDeviceName(name);
  if (parsed === null) return { status: 'unknown' };
  const byCard = (d: { card: number; cardId: string }) => (/^\d+$/.test(parsed.card) ? d.card === Number(parsed.card) : d.cardId === parsed.card);
  const onCard = listing.devices.filter(byCard);
  const found = onCard.find((d) => d.device === parsed.device);
  if (found) return { status: 'found', device: found };
  const available = listing.devices.length ? listing.devices.map((d) => d.profileDevice).join(', ') : 'none';
  if (onCard.length > 0) {
    return { status: 'missing', reason: `card ${parsed.card} has no capture device ${parsed.device} (its capture devices: ${onCard.map((d) => d.device).join(', ')})` };
  }
  const card = listing.cards.find((c) => (/^\d+$/.test(parsed.card) ? c.card === Number(parsed.card) : c.id === parsed.card));
  if (card) return { status: 'missing', reason: `card ${card.id} (${card.name}) has no capture device; capture devices here: ${available}` };
  return { status: 'missing', reason: `no sound card ${/^\d+$/.test(parsed.card) ? parsed.card : `"${parsed.card}"`}; capture devices here: ${available}` };
}

/**
 * A recorder's error without alsa-lib's trace lines (`ALSA lib conf.c:5180:(…) …`, one per
 * step of a failed device lookup): what is left is arecord's own one-line reason. Also
 * drops the daemon's "will be retried", for commands that do not retry.
 */
export function condenseRecorderMessage(message: string): string {
  return message
    .replace(/ALSA lib [^\n]*\n/g, '')
    .replace(/\s*\n\s*/g, ' ')
    .replace(/ — capture will be retried$/, '')
    .trim();
}

export interface CommandOutput {
  code: number | null;
  stdout: string;
  stderr: string;
  /** Set when the command could not be run at all, or was stopped at its timeout. */
  error: string | null;
}

/** Runs a tool with the C locale (its output is parsed) and a deadline; never throws. */
export function runTool(command: string, args: string[], timeoutMs: number): Promise<CommandOutput> {
  return new Promise((resolve) => {
    execFile(command, args, { timeout: timeoutMs, encoding: 'utf8', env: { ...process.env, LC_ALL: 'C', LANG: 'C' }, maxBuffer: 1024 * 1024 }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof (error as NodeJS.ErrnoException & { code?: unknown }).code === 'number' ? ((error as unknown as { code: number }).code) : null;
      const failure = error === null ? null : (error as { killed?: boolean }).killed ? `timed out after ${timeoutMs} ms` : code === null ? error.message : null;
      resolve({ code, stdout: stdout ?? '', stderr: stderr ?? '', error: failure });
    });
  });
}

export interface ListCaptureOptions {
  /** /proc/asound unless given. */
  procDir?: string;
  /** Ask each device for its hardware parameters (opens it briefly). Default true. */
  probeCapabilities?: boolean;
}

const ARECORD_TIMEOUT_MS = 4000;

/** Everything ALSA can say about this machine's capture devices; never throws. */
export async function listCaptureDevices(options: ListCaptureOptions = {}): Promise<CaptureListing> {
  const procDir = options.procDir ?? '/proc/asound';
  const [arecordPath, cardsText, pcmText] = await Promise.all([findOnPath('arecord'), readText(join(procDir, 'cards')), readText(join(procDir, 'pcm'))]);
  const arecord = arecordPath ?? null;
  const cards = parseProcCards(cardsText ?? '');
  const pcms = parseProcPcm(pcmText ?? '');
  let entries: ArecordEntry[] = [];
  let arecordMessage: string | null = null;
  if (arecord !== null) {
    const out = await runTool(arecord, ['-l'], ARECORD_TIMEOUT_MS);
    entries = parseArecordList(out.stdout);
    if (entries.length === 0) arecordMessage = (out.error ?? `${out.stderr}\n${out.stdout}`).trim().split('\n').filter(Boolean).pop() ?? null;
  }
  if (entries.length === 0) {
    // No arecord, or it could not open the cards: the kernel's own list still names them.
    entries = pcms
      .filter((p) => p.capture)
      .map((p) => {
        const card = cards.find((c) => c.card === p.card);
        return { card: p.card, cardId: card?.id ?? String(p.card), cardName: card?.name ?? '', device: p.device, deviceName: p.name || p.id };
      });
  }
  const devices: CaptureDevice[] = [];
  for (const entry of entries) {
    const cardId = entry.cardId || cards.find((c) => c.card === entry.card)?.id || String(entry.card);
    const device: CaptureDevice = {
      ...entry,
      cardId,
      profileDevice: `plughw:CARD=${cardId},DEV=${entry.device}`,
      hwDevice: `hw:CARD=${cardId},DEV=${entry.device}`,
      capabilities: null,
      note: null,
    };
    const stream = await readText(join(procDir, `card${entry.card}`, `stream${entry.device}`));
    device.capabilities = stream === null ? null : parseUsbStream(stream);
    if (device.capabilities === null && options.probeCapabilities !== false) {
      if (arecord === null) device.note = 'channels and rates unknown: install alsa-utils (arecord) to read them';
      else {
        const probe = await probeHwParams(arecord, device.hwDevice);
        device.capabilities = probe.capabilities;
        device.note = probe.note;
      }
    }
    devices.push(device);
  }
  return { devices, cards, arecord, arecordMessage, procAsound: cardsText !== null };
}

/** Opens the device just long enough for arecord to print what it accepts (the default U8 mono 8 kHz then fails, or records a second into /dev/null). */
async function probeHwParams(arecord: string, hwDevice: string): Promise<{ capabilities: CaptureCapabilities | null; note: string | null }> {
  const out = await runTool(arecord, ['-D', hwDevice, '--dump-hw-params', '-d', '1', '-t', 'raw', '/dev/null'], ARECORD_TIMEOUT_MS);
  const capabilities = parseHwParams(`${out.stderr}\n${out.stdout}`);
  if (capabilities !== null) return { capabilities, note: null };
  const said = `${out.stderr}\n${out.stdout}`;
  if (/busy/i.test(said)) return { capabilities: null, note: 'busy: another program has it open (a running ser-edge?), so its channels and rates could not be read' };
  if (/permission denied/i.test(said)) return { capabilities: null, note: 'permission denied: add this user to the audio group' };
  const last = (out.error ?? said).trim().split('\n').filter(Boolean).pop();
  return { capabilities: null, note: `channels and rates unknown${last ? ` (arecord: ${last})` : ''}` };
}

async function readText(path: string): Promise<string | null> {
  try {
    return await readFile(path, 'utf8');
  } catch {
    return null;
  }
}

/**
 * A microphone source for the device: every channel it has (unmapped ones cost nothing),
 * and its native rate when it cannot deliver 16 kHz itself (ser-edge's resampler then
 * does the conversion instead of ALSA's plug layer).
 */
export function suggestedSource(device: CaptureDevice, modelRate = 16000): { type: 'microphone'; device: string; channelCount: number; inputRate?: number } {
  const caps = device.capabilities;
  const channelCount = Math.max(1, Math.min(32, caps?.channels?.max ?? 2));
  const source: { type: 'microphone'; device: string; channelCount: number; inputRate?: number } = { type: 'microphone', device: device.profileDevice, channelCount };
  const native = nativeRate(caps, modelRate);
  if (native !== null && native !== modelRate) source.inputRate = native;
  return source;
}

/** The rate to capture at: the model's when the device has it, else the best of the usual ones it has. */
export function nativeRate(caps: CaptureCapabilities | null, modelRate: number): number | null {
  if (caps?.rates == null) return null;
  const has = (rate: number) => (caps.rateList ? caps.rateList.includes(rate) : caps.rates!.min <= rate && rate <= caps.rates!.max);
  if (has(modelRate)) return modelRate;
  for (const rate of [48000, 32000, 96000, 44100]) if (has(rate)) return rate;
  return caps.rates.max;
}
