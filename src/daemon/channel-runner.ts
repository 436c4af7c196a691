import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import type { AudioSource } from '../audio/audio-source.js';
import { ChannelMappingError, validateChannelMapping, type ChannelMapping } from '../audio/channel-map.js';
import type { SourceConfig } from '../config/daemon-config.js';
import type { PipelineMetrics } from '../telemetry/pipeline-metrics.js';
import type { DaemonBus } from './daemon-events.js';
import type { EventLoopTurns } from './event-loop-turns.js';
import type { HeadsetChannel } from './headset-channel.js';
import type { LoadShedder } from './load-shedder.js';
import { canEnd, describeSource, isLive } from './open-audio-source.js';

export interface ChannelRunnerDependencies {
  source: SourceConfig;
  /** The headset channels this source feeds, by id (from the source's `channels` mapping). */
  channels: Map<string, HeadsetChannel>;
  open: (source: SourceConfig) => Promise<AudioSource>;
  retry: { initialMs: number; maxMs: number };
  bus: DaemonBus;
  metrics: PipelineMetrics;
  logger: Logger;
  /**
   * Defined while the flags already raised have not yet been stored: the read loop waits
   * for it before its next block, so a source replaying faster than the disk can store
   * flags is slowed down instead of piling them up in memory, where a shutdown would lose
   * them. A live source that waits falls behind and sheds windows, which are counted.
   */
  flagBacklog?: () => Promise<void> | undefined;
  /** Shared by every source: which live channels are analysed while the CPU cannot keep up. */
  shedder: LoadShedder;
  /** Shared by every source: turns on the event loop's thread. */
  turns: EventLoopTurns;
}

/** A source that ran this long before failing was healthy: its next failure starts the backoff over. */
const HEALTHY_RUN_MS = 30_000;
/**
 * A block the source made us wait this long for was not queued behind others: it is the
 * present. The lag is measured from there, so audio a recorder lost upstream (an ALSA
 * overrun) does not count as lag for ever after.
 */
const PRESENT_WAIT_MS = 20;

/**
 * Runs one audio source: opens it, splits its blocks onto the headset channels it
 * carries, and when it fails (headset unplugged, recorder died, file unreadable) reports
 * the failure and reopens it after an exponential backoff. Each source runs on its own,
 * so one failing never holds up another. A source that cannot carry its channel mapping
 * (an index beyond its channels) is refused for good: retrying would not add a channel.
 *
 * The runner computes in turns (EventLoopTurns), so timers, MQTT and the other sources
 * keep running whatever a block costs. A live source reports its lag to the shared
 * LoadShedder, which says which of its channels to analyse and which to skip; a live
 * source more than `maxLagSeconds` behind skips ahead to the present.
 */
export class ChannelRunner {
  private readonly deps: ChannelRunnerDependencies;
  private readonly mapping: ChannelMapping;
  /** Each headset channel with the index of its audio in the source's blocks, in mapping order. */
  private readonly routes: { index: number; channel: HeadsetChannel }[];
  private readonly description: string;
  private current: AudioSource | undefined;
  private readonly stopping = new AbortController();
  private loop: Promise<void> | undefined;

  constructor(dependencies: ChannelRunnerDependencies) {
    this.deps = dependencies;
    this.mapping = dependencies.source.channels.map((c) => ({ index: c.index, id: c.id, role: c.role }));
    this.routes = this.mapping.flatMap(({ index, id }) => {
      const channel = dependencies.channels.get(id);
      return channel === undefined ? [] : [{ index, channel }];
    });
    this.description = describeSource(dependencies.source);
  }

  start(): void {
    for (const channel of this.deps.channels.values()) {
      this.deps.metrics.channels.set(channel.id, { role: channel.role, state: 'starting', source: this.description, failures: 0, droppedWindows: 0 });
      channel.start();
    }
    this.loop = this.run();
  }

  /** Stops capture and waits for the read loop to finish its current block. */
  async stop(): Promise<void> {
    this.stopping.abort();
    await this.current?.close().catch(() => {});
    await this.loop;
    // Calls in progress are not ended: the caller is still on the line, and the offline
    // status tells consumers the retained level is no longer watched.
  }

  private async run(): Promise<void> {
    const { bus, logger, metrics, source } = this.deps;
    const ids = [...this.deps.channels.keys()];
    let attempt = 0;
    let retryInMs = 0;
    while (!this.stopping.signal.aborted) {
      const openedAt = performance.now();
      try {
        const audio = await this.deps.open(source);
        this.current = audio;
        if (this.stopping.signal.aborted) break;
        validateChannelMapping(this.mapping, audio);
        this.setState('running');
        bus.emit('source-running', { source: audio.description, channels: ids });
        await this.pump(audio);
        if (this.stopping.signal.aborted) break;
        if (canEnd(source)) {
          for (const channel of this.deps.channels.values()) channel.endCall(undefined, 'silence');
          this.setState('ended');
          bus.emit('source-ended', { source: audio.description, channels: ids });
          logger.info({ source: audio.description, channels: ids }, 'audio source ended');
          return;
        }
        throw new Error('the source stopped delivering audio');
      } catch (error) {
        if (this.stopping.signal.aborted) break;
        if (error instanceof ChannelMappingError) {
          this.refuse(error);
          return;
        }
        if (performance.now() - openedAt >= HEALTHY_RUN_MS) attempt = 0;
        retryInMs = Math.min(this.deps.retry.maxMs, this.deps.retry.initialMs * 2 ** attempt);
        attempt++;
        const message = (error as Error).message ?? String(error);
        metrics.channelFailures++;
        this.setState('retrying', message);
        bus.emit('source-failed', { source: this.description, channels: ids, error: message, attempt, retryInMs, permanent: false });
        logger.error({ source: this.description, channels: ids, attempt, retryInMs, error: message }, 'audio source failed; other channels continue, this one is retried');
      } finally {
        await this.current?.close().catch(() => {});
        this.current = undefined;
      }
      try {
        await sleep(retryInMs, undefined, { signal: this.stopping.signal });
      } catch {
        break;
      }
    }
  }

  private async pump(audio: AudioSource): Promise<void> {
    const { shedder, turns } = this.deps;
    const aborted = this.stopping.signal;
    const live = isLive(this.deps.source);
    const rate = audio.sampleRate;
    /** Samples per channel taken from the source (yielded or skipped), against the wall clock since `baseMs`. */
    let delivered = 0;
    let baseMs = Number.NaN;
    let askedAt = performance.now();
    if (live) shedder.enlist(this, this.routes.map((r) => r.channel.id));
    try {
      for await (const block of audio.blocks()) {
        if (aborted.aborted) return;
        const arrivedAt = performance.now();
        const size = block[0]!.length;
        delivered += size;
        if (live) {
          if (Number.isNaN(baseMs) || arrivedAt - askedAt >= PRESENT_WAIT_MS) baseMs = arrivedAt - (delivered / rate) * 1000;
          const lag = Math.max(0, (arrivedAt - baseMs) / 1000 - delivered / rate);
          if (lag > shedder.maxLagSeconds) {
            // Too late to be worth analysing: jump to the present, and count this block and
            // what was jumped over (or, from a device, never arrived) as skipped.
            const jumped = audio.skipToPresent?.() ?? Math.round(lag * rate);
            delivered += jumped;
            baseMs = performance.now() - (delivered / rate) * 1000;
            for (const { channel } of this.routes) channel.skip(size + jumped);
            this.deps.logger.debug({ source: this.description, lagSeconds: Math.round(lag * 10) / 10, skippedSeconds: Math.round(((size + jumped) / rate) * 10) / 10 }, 'audio source fell behind real time; skipped to the present');
            // Not reported to the shedder: the lag that led here was reported as it built up.
            askedAt = performance.now();
            continue;
          }
          shedder.blockArrived(this, lag, arrivedAt);
        }
        let served = 0;
        for (const { index, channel } of this.routes) {
          if (turns.due) {
            await turns.next();
            if (aborted.aborted) return;
          }
          if (!live || shedder.serves(channel.id)) {
            channel.push(block[index]!);
            served++;
          } else {
            channel.skip(size);
          }
        }
        askedAt = performance.now();
        if (live) shedder.blockDone(this, (served * size) / rate, askedAt);
        const backlog = this.deps.flagBacklog?.();
        if (backlog !== undefined) await backlog;
      }
    } finally {
      if (live) shedder.withdraw(this);
    }
  }

  /** Logged once, never retried: the config (or the file) must change before this source can run. */
  private refuse(error: ChannelMappingError): void {
    const { bus, logger, metrics, source } = this.deps;
    const ids = [...this.deps.channels.keys()];
    metrics.channelFailures++;
    this.setState('failed', error.message);
    bus.emit('source-failed', { source: this.description, channels: ids, error: error.message, attempt: 1, retryInMs: 0, permanent: true });
    logger.error(
      { source: this.description, type: source.type, channels: ids, error: error.message },
      "audio source refused: it cannot carry its channel mapping; fix the source's channels in the config (or the file) and restart — it is not retried",
    );
  }

  private setState(state: 'running' | 'retrying' | 'ended' | 'failed', error?: string): void {
    for (const id of this.deps.channels.keys()) {
      const health = this.deps.metrics.channels.get(id);
      if (health === undefined) continue;
      health.state = state;
      if (error !== undefined) {
        health.lastError = error;
        health.failures++;
      }
    }
  }
}
