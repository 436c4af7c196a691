import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { SHUTDOWN_DEADLINE_MS, SHUTDOWN_GOODBYE_MS } from './config/daemon-config.js';
import type { ResolvedConfig } from './config/load-daemon-config.js';
import { DaemonBus, type ChannelLevelEvent, type UrgencyChangeEvent } from './daemon/daemon-events.js';
import { ChannelRunner } from './daemon/channel-runner.js';
import { CommandRouter } from './daemon/command-router.js';
import { EmbeddedBroker } from './daemon/embedded-broker.js';
import { EventLoopTurns } from './daemon/event-loop-turns.js';
import { describeFlag } from './daemon/flag-printer.js';
import { HeadsetChannel } from './daemon/headset-channel.js';
import { loggableUrl } from './daemon/daemon-logger.js';
import { LoadShedder } from './daemon/load-shedder.js';
import { openAudioSource } from './daemon/open-audio-source.js';
import { lockedDirectories, StateDirectoryLock } from './daemon/state-dir-lock.js';
import { TimedOutbox } from './daemon/timed-outbox.js';
import { loadModel } from './daemon/load-model.js';
import { configuredTrust, ModelTrustError } from './daemon/model-trust.js';
import type { Classifier } from './model/classifier.js';
import { buildClassifier } from './model/load-classifier.js';
import type { TrustedKey } from './update/bundle-signature.js';
import type { BundleRef } from './update/install-pipeline.js';
import { MODEL_STORE_DIR, ModelStore } from './update/model-store.js';
import { ModelUpdater } from './update/model-updater.js';
import { startModel, type StartedModel } from './update/start-model.js';
import { liveModel, ModelSlot } from './daemon/model-slot.js';
import { linkSettings } from './daemon/link-settings.js';
import { MqttLink } from './mqtt/mqtt-link.js';
import type { EMOTIONS } from './model/emotions.js';
import type { TelemetryPayload, UrgencyEvent } from './mqtt/payload-schemas.js';
import { UrgencyPublisher } from './mqtt/urgency-publisher.js';
import { DroppedWindowLog } from './telemetry/dropped-window-log.js';
import { HealthProbe } from './telemetry/health-probe.js';
import { PipelineMetrics } from './telemetry/pipeline-metrics.js';
import { PrometheusEndpoint } from './telemetry/prometheus-endpoint.js';
import { TelemetryReporter } from './telemetry/telemetry-reporter.js';
import type { UrgencySettings } from './urgency/call-urgency.js';
import { DEFAULT_TRACKER_CONFIG } from './urgency/urgency-tracker.js';
import { DEFAULT_WINDOWING } from './audio/speech-windower.js';

export interface DaemonDependencies {
  config: ResolvedConfig;
  logger: Logger;
  /** ser-edge's version, for the status payload. */
  version: string;
  /** Where the human flag lines go when config.printFlags is on. */
  printLine?: (line: string) => void;
}

/**
 * The running gateway: audio sources → headset channels → urgency events → outbox →
 * MQTT. This file only builds the stages and connects them through the bus; every
 * behaviour lives in the stage that owns it. start() brings the stages up from the
 * broker side towards the microphones, stop() takes them down the other way round.
 */
export class Daemon {
  private readonly deps: DaemonDependencies;
  readonly bus = new DaemonBus();
  readonly metrics = new PipelineMetrics();
  private slot: ModelSlot | undefined;
  private updater: ModelUpdater | undefined;
  private broker: EmbeddedBroker | undefined;
  private outbox: TimedOutbox | undefined;
  private link: MqttLink | undefined;
  private publisher: UrgencyPublisher | undefined;
  private telemetry: TelemetryReporter | undefined;
  private prometheus: PrometheusEndpoint | undefined;
  private droppedWindowLog: DroppedWindowLog | undefined;
  private shedder: LoadShedder | undefined;
  private readonly channels = new Map<string, HeadsetChannel>();
  private readonly runners: ChannelRunner[] = [];
  private readonly locks: StateDirectoryLock[] = [];
  /** Publisher calls in the order the channels made them, so a channel's retained state ends on its latest word. */
  private publishing: Promise<unknown> = Promise.resolve();
  /** Urgency events handed to `publishing` and not yet stored in the outbox. */
  private flagsQueued = 0;
  private flagsBelowLimit: { promise: Promise<void>; resolve: () => void } | null = null;
  private starting: Promise<void> | undefined;
  /** Set by stop(): a start still under way gives up at its next step. */
  private stopRequested = false;

  constructor(dependencies: DaemonDependencies) {
    this.deps = dependencies;
  }

  /** The broker in use (the embedded one's address when no url is configured). */
  get brokerUrl(): string {
    return this.deps.config.mqtt.url ?? this.broker?.url ?? '';
  }

  /**
   * The live model and its shadow trial, once start() has loaded the model (undefined
   * before): the update stage switches models and runs trials through it.
   */
  get modelSlot(): ModelSlot | undefined {
    return this.slot;
  }

  /** Whether the MQTT link is connected now (the demo's status line). */
  get brokerConnected(): boolean {
    return this.link?.connected ?? false;
  }

  /** Brings the stages up. A stop() while this runs makes it reject with DaemonStartAborted at its next step. */
  start(): Promise<void> {
    this.starting ??= this.bringUp();
    return this.starting;
  }

  private async bringUp(): Promise<void> {
    const { config, logger } = this.deps;
    // First, before anything is read: a second daemon on the same outbox would reuse its seqs.
    for (const dir of lockedDirectories(config)) {
      const lock = new StateDirectoryLock(dir);
      await lock.acquire();
      this.locks.push(lock);
      this.continueStarting();
    }
    // Read once: the start, the installs and the checks of the store's bundles all use the same keys.
    const trust = await configuredTrust(config.model);
    const downloadCa = await readDownloadCa(config.update.caFile);
    const store = new ModelStore({ dir: join(config.stateDir, MODEL_STORE_DIR) });
    const started = await startModel({
      store,
      configDir: config.model.dir,
      startAttempts: config.update.startAttempts,
      startWindowSeconds: config.update.startWindowSeconds,
      // A bundle installed remotely runs only while a trusted key's signature is on it; model.allowUnsigned is for model.dir alone.
      load: (dir, source) => loadModel({ ...config.model, dir }, logger, { trust: source === 'store' ? { keys: trust.keys, allowUnsigned: false } : trust }),
      logger,
    });
    const classifier = started.classifier;
    const slot = new ModelSlot({ initial: liveModel(classifier, urgencySettings(config), started.active.sha256) });
    this.slot = slot;
    this.continueStarting();
    /** The model in use now: a switch changes it while the daemon runs. */
    const model = () => ({ name: slot.current.ref.name, version: slot.current.ref.version });
    logger.info({ model: model(), backend: classifier.backend, dir: started.active.source === 'store' ? store.pathOf(started.active) : config.model.dir, source: started.active.source }, 'model loaded');

    if (config.mqtt.url === undefined) {
      this.broker = new EmbeddedBroker({ port: config.mqtt.embedded.port });
      try {
        await this.broker.start();
      } catch (error) {
        if (config.mqtt.embedded.port === 0) throw error;
        // The demo must work on a machine where 1883 is already taken: any free port will do.
        logger.warn({ port: config.mqtt.embedded.port, error: (error as Error).message }, 'embedded broker port taken; using a free one');
        await this.broker.stop();
        this.broker = new EmbeddedBroker({ port: 0 });
        await this.broker.start();
      }
      logger.info({ url: this.broker.url }, 'no mqtt.url configured: embedded broker listening on loopback');
      this.continueStarting();
    }

    this.outbox = new TimedOutbox({
      dir: config.outbox.dir,
      maxBytes: config.outbox.maxBytes,
      ...(config.outbox.segmentBytes !== undefined ? { segmentBytes: config.outbox.segmentBytes } : {}),
      logger,
      onPublished: (ms) => this.metrics.latency.publish.record(ms),
    });
    await this.outbox.start();
    this.continueStarting();
    this.link = new MqttLink({
      ...linkSettings(config, this.brokerUrl),
      statusInfo: () => ({ version: this.deps.version, model: model(), backend: slot.current.classifier.backend }),
      // aedes speaks MQTT 3.1.1 only: asking it for 5 first would just log a fallback warning.
      ...(this.broker ? { protocolVersion: 4 as const } : {}),
      logger,
    });
    this.publisher = new UrgencyPublisher({ link: this.link, outbox: this.outbox, logger });
    const link = this.link;
    const updater = this.modelUpdater(slot, link, { store, started, trustedKeys: trust.keys, downloadCa });
    this.updater = updater;
    // Retained, and again after every reconnect: a broker that lost its store still learns what runs here.
    link.on('connect', () => updater.publish());
    this.buildChannels(slot);
    this.wireBus();
    this.link.onCommand(new CommandRouter({ channels: this.channels, logger, callRate: config.commands.call, models: updater }).handle);
    // The embedded broker is loopback-only and admits anyone by design: nothing to warn about there.
    if (config.commands.enabled && !this.broker) link.once('connect', () => void warnIfAnonymous(link, logger));

    await this.publisher.start();
    await this.link.start();
    logger.info({ url: loggableUrl(this.brokerUrl) }, 'connecting to the MQTT broker');
    this.continueStarting();

    const probe = new HealthProbe({ stateDir: config.stateDir });
    const outbox = this.outbox;
    this.telemetry = new TelemetryReporter({
      site: config.site,
      gateway: config.gateway,
      intervalSeconds: config.telemetry.intervalSeconds,
      metrics: this.metrics,
      probe,
      backend: () => slot.current.classifier.backend,
      shadow: () => shadowTelemetry(slot),
      outbox,
      reconnects: () => link.reconnects,
      channelLevels: () => new Map([...this.channels].map(([id, c]) => [id, { callId: c.callId, level: c.level }])),
      publish: (payload) => {
        if (!link.connected) return undefined;
        // A shadow trial's figures move with every window: …/model follows at the telemetry's pace.
        if (slot.shadow !== null) updater.publish();
        return link.publishTelemetry(payload);
      },
      logger,
    });
    if (config.telemetry.prometheus.enabled) {
      this.prometheus = new PrometheusEndpoint({ ...config.telemetry.prometheus, metrics: this.metrics, outbox, reconnects: () => link.reconnects, logger });
      await this.prometheus.start();
      this.continueStarting();
    }
    this.droppedWindowLog = new DroppedWindowLog({ metrics: this.metrics, logger, served: () => ({ served: this.shedder!.servedChannels, live: this.shedder!.liveChannels }) });
    await updater.start();
    for (const runner of this.runners) runner.start();
    this.telemetry.start();
    this.droppedWindowLog.start();
    logger.info({ channels: [...this.channels.keys()], sources: config.sources.length }, 'ser-edge running');
  }

  /**
   * Orderly shutdown, all of it within one deadline (`withinMs`, default
   * SHUTDOWN_DEADLINE_MS): capture stops first, then what the outbox holds gets until the
   * flush timeout to be acknowledged, then the link says `offline` and closes. Each step gets
   * only the time left, and capture and flush leave SHUTDOWN_GOODBYE_MS of it for the
   * goodbye, so a recorder slow to die or a broker slow to acknowledge cannot crowd out the
   * `offline` status. A step that overruns is left behind, never waited for.
   * Unacknowledged events stay on disk for the next start. Called while start() is still
   * under way, it lets start() give up at its next step and waits for that first.
   */
  async stop(options: { withinMs?: number; flushMs?: number } = {}): Promise<void> {
    const { config, logger } = this.deps;
    const until = performance.now() + (options.withinMs ?? SHUTDOWN_DEADLINE_MS);
    /** What is left of the deadline once `reserve` ms are kept back for the steps after this one. */
    const left = (reserve = 0) => Math.max(0, until - reserve - performance.now());
    const step = async (name: string, work: Promise<unknown> | undefined, ms: number): Promise<void> => {
      if (work === undefined) return;
      const outcome = await settleWithin(work, ms);
      if (outcome === 'late') logger.warn({ step: name, waitedMs: Math.round(ms) }, `shutdown: ${name} did not finish in time; going on without it`);
      else if (outcome instanceof Error) logger.warn({ step: name, error: outcome.message }, `shutdown: ${name} failed`);
    };

    this.stopRequested = true;
    // start() reports its own failure (or abort) to its caller; here it only has to be over.
    await step('start-up', this.starting?.catch(() => {}), left(SHUTDOWN_GOODBYE_MS));
    await step('capture', Promise.all(this.runners.map((r) => r.stop())), left(SHUTDOWN_GOODBYE_MS));
    await step('queueing the last events', this.publishing, left(SHUTDOWN_GOODBYE_MS));
    await step('telemetry', this.telemetry?.stop(), left(SHUTDOWN_GOODBYE_MS));
    this.droppedWindowLog?.stop();
    const flushedAll = await this.flush(Math.min(options.flushMs ?? config.mqtt.flushTimeoutMs, left(SHUTDOWN_GOODBYE_MS)));
    if (!flushedAll) logger.warn({ pending: this.outbox?.depth }, 'shutdown: some events were not acknowledged in time; they stay in the outbox for the next start');
    await step('prometheus endpoint', this.prometheus?.stop(), left(SHUTDOWN_GOODBYE_MS));
    // Of the goodbye's share: a moment for a publish awaiting its PUBACK, most of it for `offline`, the rest for closing.
    await this.publisher?.stop(left(STOP_OFFLINE_MS + STOP_CLOSE_MS));
    await this.link?.stop({ offlineTimeoutMs: left(STOP_CLOSE_MS) });
    await step('outbox', this.outbox?.stop(), left());
    await step('embedded broker', this.broker?.stop(), left());
    this.updater?.stop();
    // An orderly stop is not a failed start of a model still waiting to be confirmed.
    await step('model store', this.updater?.forgetThisStart(), left());
    this.slot?.dispose();
    for (const lock of this.locks.splice(0)) await lock.release();
    logger.info({}, 'ser-edge stopped');
  }

  /** Throws once stop() was called, so a start still under way gives up instead of starting capture. */
  private continueStarting(): void {
    if (this.stopRequested) throw new DaemonStartAborted();
  }

  private async flush(deadlineMs: number): Promise<boolean> {
    const until = performance.now() + deadlineMs;
    while ((this.outbox?.depth ?? 0) > 0 && this.link?.connected && performance.now() < until) await new Promise((r) => setTimeout(r, 20));
    return (this.outbox?.depth ?? 0) === 0;
  }

  /** The update stage over the running channels: installs, shadow trials and rollbacks switch `slot` between two windows. */
  private modelUpdater(
    slot: ModelSlot,
    link: MqttLink,
    start: { store: ModelStore; started: StartedModel; trustedKeys: readonly TrustedKey[]; downloadCa: Buffer | undefined },
  ): ModelUpdater {
    const { config, logger } = this.deps;
    const runtime = config.model.runtime === 'tfjs' ? { gruRuntime: 'tfjs' as const, tfBackends: config.model.backends } : {};
    const live = (classifier: Classifier, ref: BundleRef) => liveModel(classifier, urgencySettings(config), ref.sha256);
    const afterSwitch = () => link.publishStatus().catch((error: Error) => logger.warn({ error: error.message }, 'could not publish the status'));
    return new ModelUpdater({
      site: config.site,
      gateway: config.gateway,
      store: start.store,
      trustedKeys: start.trustedKeys,
      settings: {
        maxInlineBytes: config.update.maxInlineBytes,
        maxBundleBytes: config.update.maxBundleBytes,
        downloadTimeoutSeconds: config.update.downloadTimeoutSeconds,
        ...(start.downloadCa !== undefined ? { ca: start.downloadCa } : {}),
        shadowMinutes: config.update.shadowMinutes,
        confirmAfterSeconds: config.update.confirmAfterSeconds,
      },
      buildClassifier: (bundle) => buildClassifier(bundle, runtime),
      active: start.started.active,
      ...(start.started.recordedStart !== undefined ? { thisStart: start.started.recordedStart } : {}),
      live: {
        activate: (classifier, ref) => {
          slot.activate(live(classifier, ref)).classifier.dispose();
          if (link.connected) void afterSwitch();
        },
        startShadow: (classifier, ref, minutes) => void slot.startShadow(live(classifier, ref), minutes),
        endShadow: () => slot.endShadow(),
        shadowReport: () => slot.shadow?.report() ?? null,
        canAdopt: (manifest, mode) => slot.canAdopt(manifest, mode),
      },
      publishState: (state) => {
        if (link.connected) link.publishModelState(state).catch((error: Error) => logger.warn({ error: error.message }, 'could not publish the model state'));
      },
      logger,
    });
  }

  private buildChannels(model: ModelSlot): void {
    const { config, logger } = this.deps;
    const windowing = { ...DEFAULT_WINDOWING, windowSeconds: config.audio.windowSeconds, hopSeconds: config.audio.hopSeconds };
    // Opened at the first model's rate for good: a model switch keeps it (ModelSlot.canAdopt).
    const sampleRate = model.sampleRate;
    // One of each for all sources: the CPU and the event loop's thread are shared.
    const shedder = new LoadShedder({ maxLagSeconds: config.audio.maxLagSeconds });
    const turns = new EventLoopTurns();
    this.shedder = shedder;
    for (const source of config.sources) {
      const channels = new Map<string, HeadsetChannel>();
      for (const { id, role, callId } of source.channels) {
        if (this.channels.has(id)) throw new Error(`channel id "${id}" is configured twice; every headset channel needs its own id`);
        const channel = new HeadsetChannel({
          id,
          role,
          model,
          windowing,
          callSilenceSeconds: config.calls.callSilenceSeconds,
          ...(callId ? { callId } : {}),
          bus: this.bus,
          metrics: this.metrics,
        });
        channels.set(id, channel);
        this.channels.set(id, channel);
      }
      this.runners.push(
        new ChannelRunner({
          source,
          channels,
          open: (s) => openAudioSource(s, sampleRate, config.audio.blockMs),
          retry: config.retry,
          bus: this.bus,
          metrics: this.metrics,
          logger,
          flagBacklog: this.flagBacklog,
          shedder,
          turns,
        }),
      );
    }
    if (this.channels.size === 0) logger.warn({}, 'no audio sources configured: add `sources` to the config (see firmware-config/site-example.json)');
  }

  private wireBus(): void {
    const { logger } = this.deps;
    const publisher = this.publisher!;
    const serially = (work: () => Promise<unknown> | unknown) => {
      this.publishing = this.publishing.then(work).catch((error: Error) => logger.error({ error: error.message }, 'could not queue an urgency event or channel state'));
    };
    this.bus.on('urgency', (change: UrgencyChangeEvent) => {
      this.flagsQueued++;
      serially(async () => {
        try {
          await this.storeFlag(change);
        } finally {
          this.flagsQueued--;
          if (this.flagsQueued < MAX_QUEUED_FLAGS) this.flagsBelowLimit?.resolve();
        }
      });
    });
    this.bus.on('channel-level', (state: ChannelLevelEvent) => {
      // Agent channels are never flagged, so they have no urgency state to retain.
      if (state.role !== 'customer') return;
      serially(() => publisher.setChannelState({ channel: state.channel, callId: state.callId, level: state.level, score: round(state.score), eventId: null, emotion: null }));
    });
    this.bus.on('call', (call) => logger.info(call, `call ${call.action}`));
    this.bus.on('source-running', (s) => logger.info(s, 'audio source running'));
  }

  /** Makes one urgency change a stored event (outbox first, then it is published), and says so. */
  private async storeFlag(change: UrgencyChangeEvent): Promise<void> {
    const { config, logger } = this.deps;
    const event = await this.publisher!.flag(toFlag(change));
    this.outbox!.watch(event.id, change.window.endMs);
    // `urgency`, not `level`: pino's own `level` key is the log line's severity.
    logger.info({ channel: event.channel, callId: event.callId, kind: event.kind, urgency: event.level, score: event.score, id: event.id, seq: event.seq }, `urgency ${event.kind}`);
    if (config.printFlags) (this.deps.printLine ?? ((l: string) => process.stdout.write(`${l}\n`)))(describeFlag(event));
  }

  /** Undefined while fewer than MAX_QUEUED_FLAGS urgency events wait to be stored; else resolves once they are fewer. */
  private readonly flagBacklog = (): Promise<void> | undefined => {
    if (this.flagsQueued < MAX_QUEUED_FLAGS) return undefined;
    if (this.flagsBelowLimit === null) {
      let resolve!: () => void;
      const promise = new Promise<void>((r) => (resolve = r));
      this.flagsBelowLimit = {
        promise,
        resolve: () => {
          this.flagsBelowLimit = null;
          resolve();
        },
      };
    }
    return this.flagsBelowLimit.promise;
  };
}

/**
 * Commands are only as safe as the broker's ACL, and a broker that admits anonymous clients
 * leaves them to whatever its ACL grants anonymous ones. Checked once per start, after the
 * first connection (see MqttLink.anonymousAccess for what is checked).
 */
async function warnIfAnonymous(link: MqttLink, logger: Logger): Promise<void> {
  const access = await link.anonymousAccess();
  const commands = `${link.topics.base}/cmd/#`;
  const fix = `unless its ACL gives anonymous clients no write access to ${commands}, anyone who reaches the broker can start and end calls on this gateway; set allow_anonymous false and give each client its own login (firmware-config/mosquitto-acl.conf), or set commands.enabled false`;
  if (access === 'this-connection') logger.warn({ commands }, `the broker let this gateway in without a username or a client certificate, so it admits anonymous clients: ${fix}`);
  else if (access === 'accepted') logger.warn({ commands }, `the broker accepted an anonymous test connection (no username, no client certificate): ${fix}`);
  else logger.debug({ access }, 'anonymous access check');
}

/** update.caFile, read at start: a CA file that is not there is a config error, found before any install needs it. */
async function readDownloadCa(file: string | undefined): Promise<Buffer | undefined> {
  if (file === undefined) return undefined;
  try {
    return await readFile(file);
  } catch (error) {
    throw new ModelTrustError('download_ca', `cannot read update.caFile ${file} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message}): give the PEM CA that signs the model server's certificate, or leave the key out for the system's CAs`);
  }
}

/** start() gave up because stop() was called while it ran: a shutdown, not a failure. */
export class DaemonStartAborted extends Error {
  override name = 'DaemonStartAborted';
  constructor() {
    super('start-up was stopped before it finished');
  }
}

/**
 * Urgency events that may wait in memory to be stored before capture is held back: a few
 * seconds of fsyncs at most, so a shutdown's 'queueing the last events' step always has
 * time to store them all.
 */
const MAX_QUEUED_FLAGS = 32;

/** Of the goodbye's share of the shutdown: kept for publishing `offline`, and after it for closing the outbox and broker. */
const STOP_OFFLINE_MS = 600;
const STOP_CLOSE_MS = 200;

/** Waits for `work` at most `ms`: 'done', its error, or 'late' (it is left running). */
async function settleWithin(work: Promise<unknown>, ms: number): Promise<'done' | 'late' | Error> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'late'>((resolve) => {
    timer = setTimeout(() => resolve('late'), ms);
  });
  try {
    return await Promise.race([work.then(() => 'done' as const, (error: unknown) => (error instanceof Error ? error : new Error(String(error)))), late]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * The urgency settings from the config, which every model loaded is resolved with: the one
 * tracker (and weights) of a bundle without a trained head, the per-emotion overrides of
 * one with it. Every channel's calls, and a shadow trial's, follow them.
 */
export function urgencySettings(config: ResolvedConfig): UrgencySettings {
  return {
    tracker: {
      smoothing: config.urgency.smoothing,
      thresholds: config.urgency.thresholds ?? DEFAULT_TRACKER_CONFIG.thresholds,
      hysteresis: config.urgency.hysteresis,
      raiseWindows: config.urgency.raiseWindows,
      clearWindows: config.urgency.clearWindows,
    },
    weights: config.urgency.weights,
    emotions: config.urgency.emotions,
  };
}

/** The shadow trial's report for telemetry, with the staged model's name; null when no model is staged. */
function shadowTelemetry(slot: ModelSlot): NonNullable<TelemetryPayload['pipeline']['shadow']> | null {
  const trial = slot.shadow;
  if (trial === null) return null;
  return { model: { name: trial.model.ref.name, version: trial.model.ref.version }, ...trial.report() };
}

function toFlag(change: UrgencyChangeEvent): Omit<UrgencyEvent, 'schema' | 'id' | 'seq' | 'ts' | 'site' | 'gateway'> {
  return {
    channel: change.channel,
    callId: change.callId,
    kind: change.kind,
    level: change.level,
    previousLevel: change.previous,
    score: round(change.score),
    driver: change.driver,
    emotion: change.emotion,
    probabilities: change.probabilities as Partial<Record<(typeof EMOTIONS)[number], number>>,
    // Name and version only: the event's contract has no digest.
    model: { name: change.model.name, version: change.model.version },
    window: { start: new Date(change.window.startMs).toISOString(), end: new Date(change.window.endMs).toISOString() },
  };
}

const round = (x: number) => Math.min(1, Math.max(0, Number(x.toFixed(4))));
