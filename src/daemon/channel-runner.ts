import { setImmediate as yieldToEventLoop, setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import type { AudioSource } from '../audio/audio-source.js';
import { splitByChannelId, validateChannelMapping, type ChannelMapping } from '../audio/channel-map.js';
import type { SourceConfig } from '../config/daemon-config.js';
import type { PipelineMetrics } from '../telemetry/pipeline-metrics.js';
import type { DaemonBus } from './daemon-events.js';
import type { HeadsetChannel } from './headset-channel.js';
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
}

/** A source that ran this long before failing was healthy: its next failure starts the backoff over. */
const HEALTHY_RUN_MS = 30_000;
/** Fast replay yields to the event loop this often, so MQTT acks and timers keep running. */
const FAST_REPLAY_YIELD_BLOCKS = 4;

/**
 * Runs one audio source: opens it, splits its blocks onto the headset channels it
 * carries, and when it fails (headset unplugged, recorder died, file unreadable) reports
 * the failure and reopens it after an exponential backoff. Each source runs on its own,
 * so one failing never holds up another.
 */
export class ChannelRunner {
  private readonly deps: ChannelRunnerDependencies;
  private readonly mapping: ChannelMapping;
  private readonly description: string;
  private current: AudioSource | undefined;
  private readonly stopping = new AbortController();
  private loop: Promise<void> | undefined;

  constructor(dependencies: ChannelRunnerDependencies) {
    this.deps = dependencies;
    this.mapping = dependencies.source.channels.map((c) => ({ index: c.index, id: c.id, role: c.role }));
    this.description = describeSource(dependencies.source);
  }

  start(): void {
    for (const channel of this.deps.channels.values()) {
      this.deps.metrics.channels.set(channel.id, { role: channel.role, state: 'starting', source: this.description, failures: 0 });
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
        await this.pump(audio, openedAt);
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
        if (performance.now() - openedAt >= HEALTHY_RUN_MS) attempt = 0;
        retryInMs = Math.min(this.deps.retry.maxMs, this.deps.retry.initialMs * 2 ** attempt);
        attempt++;
        const message = (error as Error).message ?? String(error);
        metrics.channelFailures++;
        this.setState('retrying', message);
        bus.emit('source-failed', { source: this.description, channels: ids, error: message, attempt, retryInMs });
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

  private async pump(audio: AudioSource, openedAt: number): Promise<void> {
    const live = isLive(this.deps.source);
    const rate = audio.sampleRate;
    let delivered = 0;
    let blocks = 0;
    for await (const block of audio.blocks()) {
      if (this.stopping.signal.aborted) return;
      delivered += block[0]!.length;
      // How far this block's audio is behind the wall clock since the source opened.
      const lag = live ? Math.max(0, (performance.now() - openedAt) / 1000 - delivered / rate) : 0;
      for (const [id, samples] of splitByChannelId(block, this.mapping)) this.deps.channels.get(id)?.push(samples, lag);
      const backlog = this.deps.flagBacklog?.();
      if (backlog !== undefined) await backlog;
      if (!live && ++blocks % FAST_REPLAY_YIELD_BLOCKS === 0) await yieldToEventLoop();
    }
  }

  private setState(state: 'running' | 'retrying' | 'ended', error?: string): void {
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
