import { constants } from 'node:fs';
import { access } from 'node:fs/promises';
import { condenseRecorderMessage, lookUpDevice, parseDeviceName, type CaptureListing } from '../../audio/alsa-devices.js';
import type { AudioSource } from '../../audio/audio-source.js';
import { SILENCE_DB, formatDb } from '../../audio/level-meter.js';
import { findOnPath } from '../../audio/microphone-source.js';
import type { SourceConfig } from '../../config/daemon-config.js';
import type { ResolvedConfig } from '../../config/load-daemon-config.js';
import type { FeatureConfig } from '../../features/feature-config.js';
import { ChannelSurvey, surveyFeatures } from '../../pipeline/channel-survey.js';
import { openAudioSource } from '../open-audio-source.js';
import type { LockInspection } from '../state-dir-lock.js';
import { errorCode, fail, pass, skip, warn, type CheckResult } from './check-result.js';

export interface CaptureCheckOptions {
  /** The ALSA listing, asked for only when a microphone source names an ALSA device. */
  listing: () => Promise<CaptureListing>;
  /** The state directory's lock: a device held by the running daemon is expected to be busy. */
  lock: LockInspection;
  /** Seconds of audio to capture from each microphone. */
  seconds: number;
}

/** How long a capture may take beyond its length before it counts as delivering nothing (recorder start-up, USB wake-up). */
const CAPTURE_GRACE_MS = 4000;

/**
 * One row per source: a microphone's device is listed by ALSA and delivers audio through
 * the daemon's own capture path (the recorder, its format and the resampler); file, stdin
 * and demo sources have no device, and say so.
 */
export async function captureChecks(config: Pick<ResolvedConfig, 'sources' | 'model' | 'audio'>, options: CaptureCheckOptions): Promise<CheckResult[]> {
  if (config.sources.length === 0) {
    return [warn('capture', { detail: 'no audio sources configured: the daemon would run without channels', fix: 'add `sources` to the config (the Pi and Jetson profiles have one; see firmware-config/site-example.json), with the device `ser-edge devices` names' })];
  }
  const features = await surveyFeatures(config.model.dir);
  return Promise.all(config.sources.map((source, i) => sourceCheck(source, `sources[${i}]`, features, config.audio.blockMs, options)));
}

async function sourceCheck(source: SourceConfig, subject: string, features: FeatureConfig, blockMs: number, options: CaptureCheckOptions): Promise<CheckResult> {
  switch (source.type) {
    case 'demo':
      return skip('capture', { subject, detail: 'demo source (a synthetic caller): no capture device to check' });
    case 'stdin':
      return skip('capture', { subject, detail: `stdin source: raw PCM at ${source.inputRate} Hz piped in by another program; nothing to check here` });
    case 'file':
      try {
        await access(source.path, constants.R_OK);
        return skip('capture', { subject, detail: `file source ${source.path}: a replay, no capture device to check (the file is readable)` });
      } catch (error) {
        return fail('capture', { subject, detail: `file source ${source.path} cannot be read (${errorCode(error)})`, fix: `check ${subject}.path and the file's permissions` });
      }
    case 'microphone':
      return microphoneCheck(source, subject, features, blockMs, options);
  }
}

async function microphoneCheck(
  source: Extract<SourceConfig, { type: 'microphone' }>,
  subject: string,
  features: FeatureConfig,
  blockMs: number,
  options: CaptureCheckOptions,
): Promise<CheckResult> {
  const name = `mic:${source.device ?? 'default'}`;
  const check = 'capture';
  for (const [j, channel] of source.channels.entries()) {
    if (channel.index >= source.channelCount) {
      return fail(check, {
        subject,
        detail: `${name}: ${subject}.channels[${j}] (${channel.id}) is channel ${channel.index}, but the source opens ${source.channelCount} channel${source.channelCount === 1 ? '' : 's'}`,
        fix: `set ${subject}.channelCount to at least ${channel.index + 1}, or map that headset channel to an index below ${source.channelCount}`,
      });
    }
  }
  if ((await findOnPath(source.recorder)) === undefined) {
    return skip(check, { subject, detail: `${name}: not captured, its recorder ${source.recorder} is missing (see the recorder row)` });
  }
  if (source.device !== undefined && parseDeviceName(source.device) !== null) {
    const found = lookUpDevice(source.device, await options.listing());
    if (found.status === 'missing') {
      return fail(check, {
        subject,
        detail: `${name}: ${found.reason}`,
        fix: 'plug the headset in (`lsusb` should list it), then run `ser-edge devices` and put the device string it prints in ' + `${subject}.device`,
      });
    }
  }

  let captured: Captured;
  try {
    captured = await captureFor(await openAudioSource(source, features.sampleRate, blockMs), options.seconds, features);
  } catch (error) {
    const message = condenseRecorderMessage((error as Error).message);
    if (/busy/i.test(message)) {
      if (options.lock.state === 'held') {
        return warn(check, {
          subject,
          detail: `${name} is busy: the running ser-edge (pid ${options.lock.holder.pid}) has it open, so it was not captured here`,
          fix: 'expected while the service runs; to test the capture itself, stop the service first (`sudo systemctl stop ser-edge`) and run doctor again',
        });
      }
      return fail(check, { subject, detail: `${name} is busy: another program has it open`, fix: '`fuser -v /dev/snd/*` shows which program holds the sound devices; stop it (only one program can record from a hw: device)' });
    }
    return fail(check, {
      subject,
      detail: message,
      fix: /permission denied/i.test(message)
        ? 'add the user running ser-edge to the audio group (`sudo usermod -aG audio USER`, then log in again); the service gets it from its unit'
        : `check ${subject}.device against \`ser-edge devices\`, and that the headset is plugged in`,
    });
  }
  const { survey } = captured;
  const channels = survey.summary();
  const mapped = source.channels.map((c) => c.index);
  const levels = mapped.map((i) => `channel ${i} ${formatDb(channels[i]?.rmsDb ?? SILENCE_DB)}${(channels[i]?.speechShare ?? 0) > 0.05 ? ' (speech heard)' : ''}`).join(', ');
  const data = { seconds: Number(survey.seconds.toFixed(2)), channels: channels.map((c) => ({ index: c.index, rmsDb: Number(c.rmsDb.toFixed(1)), peakDb: Number(c.peakDb.toFixed(1)), speechShare: Number(c.speechShare.toFixed(3)) })) };
  if (survey.seconds < options.seconds * 0.5) {
    return fail(check, {
      subject,
      detail: `${name} delivered ${survey.seconds.toFixed(2)} s of audio in ${((options.seconds * 1000 + CAPTURE_GRACE_MS) / 1000).toFixed(1)} s${captured.error ? ` (${condenseRecorderMessage(captured.error)})` : ''}`,
      fix: 'the device opens but audio does not flow: unplug and replug the headset, check `dmesg` for USB errors, and try `arecord -D DEVICE -f S16_LE -r 16000 -d 3 /tmp/test.wav`',
      data,
    });
  }
  const silent = mapped.filter((i) => (channels[i]?.peakDb ?? SILENCE_DB) <= SILENCE_DB);
  if (silent.length > 0) {
    return warn(check, {
      subject,
      detail: `${name} delivers digital silence (every sample zero) on channel ${silent.join(', ')}; ${levels}`,
      fix: 'the capture is muted or routed nowhere: `alsamixer -c CARD`, F4 for the capture controls, unmute and raise them (on a Jetson, also route the I2S/ADMAIF mux); `ser-edge devices --listen DEVICE` shows the levels live',
      data,
    });
  }
  const identical = survey.identicalPairs().filter(([a, b]) => mapped.includes(a) && mapped.includes(b));
  if (identical.length > 0) {
    return warn(check, {
      subject,
      detail: `${name}: channels ${identical.map((p) => p.join(' and ')).join('; ')} carry the same signal, so the device is mono and ALSA's plug layer copies it: both headset channels hear one direction`,
      fix: 'a headset tap needs a capture device with one input per direction (a stereo USB audio interface); `ser-edge devices` shows each device\'s channels',
      data,
    });
  }
  return pass(check, { subject, detail: `${name} delivers audio: ${survey.seconds.toFixed(1)} s captured; ${levels}`, data });
}

interface Captured {
  survey: ChannelSurvey;
  /** Why capture stopped before its length, if it did. */
  error: string | null;
}

/**
 * Reads `seconds` of audio, or what arrives before the deadline. A recorder that fails
 * before the first block rejects with its own message (device missing, busy, denied).
 */
async function captureFor(source: AudioSource, seconds: number, features: FeatureConfig): Promise<Captured> {
  const survey = new ChannelSurvey({ features, channelCount: source.channelCount });
  const deadline = setTimeout(() => void source.close(), seconds * 1000 + CAPTURE_GRACE_MS);
  let error: string | null = null;
  try {
    for await (const block of source.blocks()) {
      survey.push(block);
      if (survey.seconds >= seconds) break;
    }
  } catch (e) {
    if (survey.seconds === 0) throw e;
    error = (e as Error).message;
  } finally {
    clearTimeout(deadline);
    await source.close();
  }
  survey.end();
  return { survey, error };
}
