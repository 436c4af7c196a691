import { condenseRecorderMessage, listCaptureDevices, lookUpDevice, suggestedSource, type CaptureDevice, type CaptureListing } from '../audio/alsa-devices.js';
import type { AudioSource } from '../audio/audio-source.js';
import { openFileSource } from '../audio/file-source.js';
import { formatDb, levelBar } from '../audio/level-meter.js';
import { openMicrophoneSource } from '../audio/microphone-source.js';
import { openStdinSource } from '../audio/stdin-source.js';
import { defaultModelDir } from '../config/package-paths.js';
import { callerSide, ChannelSurvey, describeChannel, surveyFeatures, type CallerSideVerdict, type ChannelSummary } from '../pipeline/channel-survey.js';

export interface DevicesCommandOptions {
  json?: boolean;
  /** An ALSA device, `file:PATH` (WAV, FLAC or Ogg Opus) or `-` (raw s16le PCM on stdin). */
  listen?: string;
  seconds?: number;
  /** stdin: the PCM's rate (required); a device: the rate to capture at. */
  rate?: number;
  /** stdin: interleaved channels (default 1); a device: channels to open (default: all it has). */
  channels?: number;
  /** file: replay at wall-clock pace, as a live device would deliver it. */
  realtime?: boolean;
}

/** A usage problem the option parser cannot see: printed, exit 2. */
export function devicesUsageProblem(options: DevicesCommandOptions): string | null {
  const listen = options.listen;
  if (listen === undefined) {
    for (const flag of ['seconds', 'rate', 'channels', 'realtime'] as const) {
      if (options[flag] !== undefined) return `--${flag} applies to --listen only: add --listen DEVICE (or file:PATH, or - for stdin)`;
    }
    return null;
  }
  if (listen === '') return '--listen needs a device (e.g. plughw:CARD=Headset,DEV=0), file:PATH or -';
  if (listen === '-' && options.rate === undefined) return '--listen - reads raw s16le PCM from stdin and needs its rate: add --rate HZ (and --channels N if not mono)';
  if (listen.startsWith('file:')) {
    if (listen === 'file:') return '--listen file: needs a path, e.g. --listen file:tap.wav';
    if (options.rate !== undefined || options.channels !== undefined) return '--rate and --channels do not apply to a file: its header says them';
  } else if (options.realtime !== undefined) {
    return '--realtime applies to --listen file:PATH only (devices and stdin deliver in real time by themselves)';
  }
  return null;
}

/**
 * `ser-edge devices`: the capture devices ALSA has, each with the exact string for a
 * profile's `device`; with `--listen`, a live per-channel meter and the verdict on which
 * channel carries the caller. Exit 0, also when there are no sound cards (that is an
 * answer); 1 when listening fails; 2 for usage errors.
 */
export async function runDevices(options: DevicesCommandOptions): Promise<number> {
  const problem = devicesUsageProblem(options);
  if (problem !== null) {
    process.stderr.write(`ser-edge devices: ${problem}\n`);
    return 2;
  }
  if (options.listen !== undefined) return listen(options.listen, options);
  const listing = await listCaptureDevices();
  if (options.json) process.stdout.write(`${JSON.stringify(listingJson(listing))}\n`);
  else process.stdout.write(describeListing(listing));
  return 0;
}

/** What the installer should check when nothing can record. */
function noDeviceHints(listing: CaptureListing): string[] {
  const hints = [
    'the USB headset (or audio interface) is plugged in: `lsusb` lists it, and `dmesg | grep -i audio` shows snd-usb-audio taking it',
    'the kernel made a sound card of it: `cat /proc/asound/cards`',
    'this user may open sound devices: it must be in the `audio` group (`id -nG` shows the groups; `sudo usermod -aG audio $USER`, then log in again); the ser-edge service gets the group from its systemd unit',
  ];
  if (listing.arecord === null) hints.push('alsa-utils is installed: `sudo apt-get install alsa-utils` (arecord lists the devices, and microphone sources record through it)');
  return hints;
}

function listingJson(listing: CaptureListing): Record<string, unknown> {
  return {
    devices: listing.devices.map((d) => ({
      card: d.card,
      cardId: d.cardId,
      cardName: d.cardName,
      device: d.device,
      deviceName: d.deviceName,
      profileDevice: d.profileDevice,
      hwDevice: d.hwDevice,
      channels: d.capabilities?.channels ?? null,
      rates: d.capabilities?.rates ?? null,
      rateList: d.capabilities?.rateList ?? null,
      formats: d.capabilities?.formats ?? [],
      source: suggestedSource(d),
      note: d.note,
    })),
    cards: listing.cards,
    arecord: listing.arecord,
    message: listing.devices.length === 0 ? noDevicesSentence(listing) : null,
    hints: listing.devices.length === 0 ? noDeviceHints(listing) : [],
  };
}

function noDevicesSentence(listing: CaptureListing): string {
  if (!listing.procAsound) return 'No capture devices: ALSA sees no sound card on this machine (there is no /proc/asound: no sound driver is loaded, as in most containers and VMs).';
  if (listing.cards.length === 0) return 'No capture devices: ALSA sees no sound card on this machine.';
  const cards = listing.cards.map((c) => `${c.id} (${c.name})`).join(', ');
  return `No capture devices: ALSA sees ${listing.cards.length} sound card${listing.cards.length === 1 ? '' : 's'}, none of which can record (${cards}: playback only).`;
}

function describeRange(range: { min: number; max: number } | null, unit = ''): string {
  if (range === null) return '?';
  return range.min === range.max ? `${range.min}${unit}` : `${range.min}–${range.max}${unit}`;
}

function describeDevice(d: CaptureDevice): string[] {
  const caps = d.capabilities;
  const lines = [`  card ${d.card}, device ${d.device}: ${d.cardName || d.cardId}${d.deviceName ? ` — ${d.deviceName}` : ''}`];
  if (caps) {
    const rates = caps.rateList ? `${caps.rateList.join(', ')} Hz` : describeRange(caps.rates, ' Hz');
    lines.push(`      channels ${describeRange(caps.channels)}, rates ${rates}${caps.formats.length ? `, formats ${caps.formats.join(' ')}` : ''}`);
  }
  if (d.note) lines.push(`      (${d.note})`);
  lines.push(`      device: ${d.profileDevice}`);
  lines.push(`      source: ${JSON.stringify(suggestedSource(d))}`);
  return lines;
}

export function describeListing(listing: CaptureListing): string {
  const out: string[] = [];
  if (listing.devices.length === 0) {
    out.push(noDevicesSentence(listing));
    if (listing.arecordMessage) out.push(`  (arecord -l: ${listing.arecordMessage})`);
    out.push('Check that:');
    for (const hint of noDeviceHints(listing)) out.push(`  - ${hint}`);
    out.push('Then run `ser-edge devices` again.');
    return `${out.join('\n')}\n`;
  }
  out.push(`Capture devices (ALSA), ${listing.devices.length}:`, '');
  for (const d of listing.devices) out.push(...describeDevice(d), '');
  const capturing = new Set(listing.devices.map((d) => d.card));
  const playbackOnly = listing.cards.filter((c) => !capturing.has(c.card));
  if (playbackOnly.length) out.push(`Also here, playback only: ${playbackOnly.map((c) => `${c.id} (${c.name})`).join(', ')}.`, '');
  if (listing.arecord === null) out.push('arecord is not installed (read from /proc/asound instead): `sudo apt-get install alsa-utils`, which microphone sources record through.', '');
  else if (listing.arecordMessage !== null) {
    out.push(`arecord -l listed none of these (it said: ${listing.arecordMessage}): this user probably may not open the sound devices; add it to the audio group (\`sudo usermod -aG audio $USER\`, then log in again).`, '');
  }
  if (listing.devices.some((d) => /_\d+$/.test(d.cardId))) {
    out.push('Two cards of one model get the ids NAME and NAME_1 in the order they were found; plug them into the same USB ports every time.', '');
  }
  const first = listing.devices[0]!;
  out.push(
    "Put the `device` string in the config's source (`sources[].device`; the profiles say plughw:CARD=Headset,DEV=0).",
    `To see which channel carries the caller: ser-edge devices --listen ${first.profileDevice}`,
  );
  return `${out.join('\n')}\n`;
}

const DEVICE_LISTEN_SECONDS = 15;
const BLOCK_MS = 100;

async function openListenSource(target: string, options: DevicesCommandOptions, sampleRate: number): Promise<{ source: AudioSource; live: boolean }> {
  if (target === '-') {
    return { source: openStdinSource({ inputRate: options.rate!, channels: options.channels ?? 1, sampleRate, blockMs: BLOCK_MS }), live: true };
  }
  if (target.startsWith('file:')) {
    const realtime = options.realtime === true;
    return { source: await openFileSource(target.slice('file:'.length), { sampleRate, blockMs: BLOCK_MS, realtime }), live: realtime };
  }
  // A device: as the daemon opens it (arecord through node-record-lpcm16), with every channel it has.
  const found = lookUpDevice(target, await listCaptureDevices({ probeCapabilities: options.channels === undefined || options.rate === undefined }));
  if (found.status === 'missing') throw new Error(`${target}: ${found.reason}; \`ser-edge devices\` lists the capture devices with their device strings`);
  const suggested = found.status === 'found' ? suggestedSource(found.device, sampleRate) : null;
  const channels = options.channels ?? suggested?.channelCount ?? 2;
  const inputRate = options.rate ?? suggested?.inputRate;
  const source = await openMicrophoneSource({ device: target, channels, sampleRate, blockMs: BLOCK_MS, ...(inputRate !== undefined ? { inputRate } : {}) });
  return { source, live: true };
}

async function listen(target: string, options: DevicesCommandOptions): Promise<number> {
  const features = await surveyFeatures(defaultModelDir());
  let opened;
  try {
    opened = await openListenSource(target, options, features.sampleRate);
  } catch (error) {
    process.stderr.write(`ser-edge devices: ${(error as Error).message}\n`);
    return 1;
  }
  const { source, live } = opened;
  const limit = options.seconds ?? (target === '-' || target.startsWith('file:') ? Infinity : DEVICE_LISTEN_SECONDS);
  const survey = new ChannelSurvey({ features, channelCount: source.channelCount });
  const meter = options.json ? null : live && process.stdout.isTTY ? new TtyMeter(limit) : new LineMeter();
  if (!options.json) {
    process.stdout.write(
      `Listening to ${source.description}: ${source.channelCount} channel${source.channelCount === 1 ? '' : 's'}` +
        `${Number.isFinite(limit) ? `, ${limit} s` : ''}${live ? ' (Ctrl-C stops)' : ''}.\n` +
        (live ? "During a test call, let the caller talk while the headset wearer stays quiet.\n" : ''),
    );
  }
  let interrupted = false;
  const onSignal = () => {
    interrupted = true;
    void source.close();
  };
  process.once('SIGINT', onSignal);
  let failure: Error | null = null;
  try {
    for await (const block of source.blocks()) {
      const room = Math.round((limit - survey.seconds) * survey.sampleRate);
      survey.push(room < block[0]!.length ? block.map((c) => c.subarray(0, Math.max(0, room))) : block);
      meter?.update(survey);
      if (survey.seconds >= limit || interrupted) break;
    }
  } catch (error) {
    failure = error as Error;
  } finally {
    process.removeListener('SIGINT', onSignal);
    await source.close();
  }
  meter?.finish(survey);
  survey.end();
  const failed = failure === null ? null : condenseRecorderMessage(failure.message);
  if (failed !== null && survey.seconds < 0.5) {
    // One program at a time records from a hw device, and on a gateway that is usually the service.
    const busy = /busy/i.test(failed) ? '\nAnother program has the device open. If the ser-edge service runs, stop it while you listen (`sudo systemctl stop ser-edge`) and start it again afterwards; `fuser -v /dev/snd/*` shows who holds it.' : '';
    process.stderr.write(`ser-edge devices: ${failed}${busy}\n`);
    return 1;
  }
  if (survey.seconds === 0 && !interrupted) {
    process.stderr.write(`ser-edge devices: ${source.description} ended before any audio arrived; nothing to listen to\n`);
    return 1;
  }
  const channels = survey.summary();
  const identical = survey.identicalPairs();
  const verdict = callerSide(channels, identical);
  if (options.json) {
    process.stdout.write(`${JSON.stringify({ source: source.description, sampleRate: survey.sampleRate, seconds: round(survey.seconds, 2), channels: channels.map(roundSummary), identicalChannels: identical, verdict, mapping: mappingFor(verdict, channels.length) })}\n`);
  } else {
    process.stdout.write(describeVerdict(source.description, survey.seconds, channels, verdict));
  }
  if (failed !== null) process.stderr.write(`ser-edge devices: capture stopped early: ${failed}\n`);
  return failed !== null ? 1 : 0;
}

/** The config's channel list for the verdict, with ids an installer renames per desk. */
function mappingFor(verdict: CallerSideVerdict, channelCount: number): { index: number; id: string; role: 'customer' | 'agent' }[] | null {
  if (verdict.customer === null) return null;
  const mapping: { index: number; id: string; role: 'customer' | 'agent' }[] = [{ index: verdict.customer, id: 'desk-1-customer', role: 'customer' }];
  if (verdict.agent !== null && channelCount === 2) mapping.push({ index: verdict.agent, id: 'desk-1-agent', role: 'agent' });
  return mapping.sort((a, b) => a.index - b.index);
}

function describeVerdict(description: string, seconds: number, channels: ChannelSummary[], verdict: CallerSideVerdict): string {
  const out = [`Listened to ${description} for ${seconds.toFixed(1)} s:`];
  for (const c of channels) out.push(`  ${describeChannel(c)}`);
  out.push('');
  if (verdict.customer === null) {
    out.push('No verdict on the caller\'s side:');
  } else {
    const agent = verdict.agent !== null ? `, channel ${verdict.agent} as "agent"` : '';
    out.push(`Caller's side: channel ${verdict.customer} — map it as "customer"${agent} (${verdict.confidence === 'clear' ? 'clear' : 'likely; see why'}).`);
  }
  for (const reason of verdict.reasons) out.push(`  - ${reason}`);
  const mapping = mappingFor(verdict, channels.length);
  if (mapping) {
    out.push('', 'In the config, under the source (rename the ids per desk):', `  "channels": ${JSON.stringify(mapping)}`);
  }
  return `${out.join('\n')}\n`;
}

const round = (x: number, digits: number) => Number(x.toFixed(digits));

function roundSummary(c: ChannelSummary): ChannelSummary {
  return {
    ...c,
    seconds: round(c.seconds, 2),
    speechSeconds: round(c.speechSeconds, 2),
    speechShare: round(c.speechShare, 3),
    rmsDb: round(c.rmsDb, 1),
    peakDb: round(c.peakDb, 1),
    clippedShare: round(c.clippedShare, 4),
    highBandShare: c.highBandShare === null ? null : round(c.highBandShare, 5),
  };
}

interface Meter {
  update(survey: ChannelSurvey): void;
  finish(survey: ChannelSurvey): void;
}

/** On a terminal: one line per channel, redrawn in place every block. */
class TtyMeter implements Meter {
  private drawn = 0;
  constructor(private readonly limit: number) {}

  update(survey: ChannelSurvey): void {
    const width = Math.max(10, Math.min(40, (process.stdout.columns ?? 80) - 48));
    const lines = survey.readings().map((r, i) => {
      const speech = r.speaking ? 'SPEECH' : '  ·   ';
      return `  ch ${i}  ${formatDb(r.rmsDb).padStart(11)}  ${levelBar(r.rmsDb, width, { peakDb: r.peakDb })}  ${speech}  speech ${String(Math.round(r.speechShare * 100)).padStart(3)}%`;
    });
    const clock = `  ${survey.seconds.toFixed(1)} s${Number.isFinite(this.limit) ? ` of ${this.limit}` : ''}`;
    const frame = [...lines, clock];
    // Back to the first line of the previous frame, then overwrite each line.
    const up = this.drawn > 0 ? `\x1b[${this.drawn}F` : '';
    process.stdout.write(`${up}${frame.map((l) => `\x1b[2K${l}`).join('\n')}\n`);
    this.drawn = frame.length;
  }

  finish(): void {
    // The last frame stays on screen above the summary.
  }
}

/** Elsewhere (a pipe, a log, a fast file replay): a plain line per second of audio, with that second's level and peak and whether it held speech. */
class LineMeter implements Meter {
  private nextSecond = 1;
  private peaks: number[] = [];
  private levels: number[] = [];
  private spoke: boolean[] = [];

  update(survey: ChannelSurvey): void {
    const readings = survey.readings();
    this.peaks = readings.map((r, i) => Math.max(this.peaks[i] ?? -Infinity, r.peakDb));
    this.levels = readings.map((r, i) => Math.max(this.levels[i] ?? -Infinity, r.rmsDb));
    this.spoke = readings.map((r, i) => (this.spoke[i] ?? false) || r.speaking);
    if (survey.seconds + 1e-9 < this.nextSecond) return;
    this.print(survey, readings);
    this.nextSecond = Math.floor(survey.seconds + 1e-9) + 1;
  }

  finish(survey: ChannelSurvey): void {
    if (this.peaks.length > 0) this.print(survey, survey.readings());
  }

  private print(survey: ChannelSurvey, readings: ReturnType<ChannelSurvey['readings']>): void {
    // The second's loudest block and peak: a pause at the second's end must not read as silence.
    const parts = readings.map((r, i) => `ch${i} ${formatDb(this.levels[i] ?? r.rmsDb)} peak ${formatDb(this.peaks[i] ?? r.peakDb)} ${this.spoke[i] ? 'speech' : 'quiet'}`);
    process.stdout.write(`${survey.seconds.toFixed(1).padStart(6)} s  ${parts.join(' | ')}\n`);
    this.peaks = [];
    this.levels = [];
    this.spoke = [];
  }
}
