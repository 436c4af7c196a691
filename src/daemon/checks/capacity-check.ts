import { synthesiseVoice, VOICE_STYLES } from '../../audio/synthetic-voice.js';
import { DEFAULT_WINDOWING } from '../../audio/speech-windower.js';
import type { ResolvedConfig } from '../../config/load-daemon-config.js';
import type { Classifier } from '../../model/classifier.js';
import { PipelineMetrics } from '../../telemetry/pipeline-metrics.js';
import { DaemonBus } from '../daemon-events.js';
import { HeadsetChannel } from '../headset-channel.js';
import { liveModel, ModelSlot } from '../model-slot.js';
import { fail, pass, skip, warn, type CheckResult } from './check-result.js';

export interface CapacityMeasurement {
  /** Seconds of audio the channel path carried per CPU second: real-time channels on the daemon's one thread. */
  channels: number;
  audioSeconds: number;
  cpuSeconds: number;
  windows: number;
}

/** Channels measured side by side, each on its own call, as a gateway's headsets are. */
const MEASURED_CHANNELS = 2;
const BLOCK_SECONDS = 0.1;

/**
 * Real-time channels this machine carries through the daemon's own per-channel path
 * (VAD → features → the configured model → urgency tracking, in HeadsetChannel) on
 * synthesised speech that alternates calm and angry voices. The daemon runs every channel
 * on one thread, so one core's rate is the answer. A short JIT warm-up comes first; then
 * blocks are fed until `cpuSeconds` of CPU time are spent, so a busy machine measures
 * the same as an idle one (only slower).
 */
export function measureChannelCapacity(classifier: Classifier, options: { warmupCpuSeconds?: number; cpuSeconds?: number } = {}): CapacityMeasurement {
  const sampleRate = classifier.manifest.features.sampleRate;
  const speech = new Float32Array(20 * sampleRate);
  speech.set(synthesiseVoice(VOICE_STYLES.calm, 10, sampleRate, 21));
  speech.set(synthesiseVoice(VOICE_STYLES.angry, 10, sampleRate, 22), 10 * sampleRate);
  const bus = new DaemonBus();
  const metrics = new PipelineMetrics();
  // The manifest's digest names the bundle in reports; a measurement reports none.
  const model = new ModelSlot({ initial: liveModel(classifier, undefined, '') });
  const channels = Array.from(
    { length: MEASURED_CHANNELS },
    (_, i) =>
      new HeadsetChannel({
        id: `doctor-${i}`,
        role: 'customer',
        model,
        windowing: DEFAULT_WINDOWING,
        callSilenceSeconds: 30,
        bus,
        metrics,
      }),
  );
  const block = Math.round(BLOCK_SECONDS * sampleRate);
  let position = 0;
  const feedFor = (cpuSeconds: number) => {
    const start = process.cpuUsage();
    const audioBefore = metrics.audioSeconds;
    let used = 0;
    while (used < cpuSeconds) {
      // Ten blocks between clock reads: cpuUsage() is a syscall.
      for (let n = 0; n < 10; n++) {
        for (const [c, channel] of channels.entries()) {
          // Each channel at another point of the signal, so they are not in lockstep.
          const from = (position + c * 7 * sampleRate) % (speech.length - block);
          channel.push(speech.subarray(from, from + block));
        }
        position = (position + block) % (speech.length - block);
      }
      const u = process.cpuUsage(start);
      used = (u.user + u.system) / 1e6;
    }
    return { cpu: used, audio: metrics.audioSeconds - audioBefore };
  };
  feedFor(options.warmupCpuSeconds ?? 0.5);
  const windowsBefore = metrics.windows;
  const { cpu, audio } = feedFor(options.cpuSeconds ?? 2);
  return { channels: audio / cpu, audioSeconds: audio, cpuSeconds: cpu, windows: metrics.windows - windowsBefore };
}

/** Below this share of the measured capacity, the configured channels leave room for telemetry, MQTT and louder rooms. */
const COMFORTABLE_SHARE = 0.5;

/** The measured capacity against the configured channels. */
export function capacityCheck(config: Pick<ResolvedConfig, 'sources'>, classifier: Classifier | null, measure: (c: Classifier) => CapacityMeasurement = measureChannelCapacity): CheckResult {
  const check = 'capacity';
  const configured = config.sources.reduce((n, s) => n + s.channels.length, 0);
  if (classifier === null) return skip(check, { detail: 'not measured: the model did not load (see the model row)' });
  const m = measure(classifier);
  const carried = Math.floor(m.channels);
  const data = { channels: carried, configured, audioSeconds: Number(m.audioSeconds.toFixed(1)), cpuSeconds: Number(m.cpuSeconds.toFixed(2)), windows: m.windows };
  const detail = `this machine carries about ${carried} real-time channel${carried === 1 ? '' : 's'} with ${classifier.manifest.name} ${classifier.manifest.version} (${m.audioSeconds.toFixed(0)} s of speech through the channel path in ${m.cpuSeconds.toFixed(1)} CPU s on the daemon's one thread; capture and MQTT come on top); ${configured} configured`;
  if (configured > carried) {
    return fail(check, {
      detail,
      fix: 'the channels would fall behind real time and drop windows: configure fewer channels on this gateway, move some to another, or use a lighter model (model.dir)',
      data,
    });
  }
  if (configured > carried * COMFORTABLE_SHARE) {
    return warn(check, {
      detail,
      fix: `more than ${Math.round(COMFORTABLE_SHARE * 100)}% of what the machine carries: busy moments (telemetry, reconnects, noisy rooms with more speech) may make channels fall behind; watch droppedWindows in telemetry, or configure fewer channels`,
      data,
    });
  }
  return pass(check, { detail, data });
}
