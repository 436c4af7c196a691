import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { readFile } from 'node:fs/promises';
import mqtt, { type IClientOptions, type IClientPublishOptions, type MqttClient, type IPublishPacket } from 'mqtt';
import { silentLogger, type Logger } from './logger.js';
import {
  COMMAND_SCHEMAS,
  CommandReply,
  MAX_COMMAND_BYTES,
  ModelState,
  SCHEMA_VERSION,
  StatusPayload,
  TelemetryPayload,
  describeIssues,
  isCommandName,
  type CommandRequest,
  type ModelRef,
} from './payload-schemas.js';
import { CommandRateLimiter, DEFAULT_COMMAND_RATE, type CommandRate } from './command-rate-limit.js';
import { ReplyTopicPolicy } from './reply-topics.js';
import { commandNameOf, gatewayTopics, type GatewayTopics } from './topics.js';
import { WarningThrottle } from './warning-throttle.js';

export interface StatusInfo {
  /** ser-edge software version. */
  version: string;
  model: ModelRef | null;
  backend: string | null;
}

export interface MqttLinkDeps {
  /** `mqtts://host:8883` (TLS) or `mqtt://host:1883`. Credentials in the URL are allowed but files are better. */
  url: string;
  clientId: string;
  site: string;
  gateway: string;
  /** Protocol to try first. 5 falls back to 3.1.1 when the broker refuses MQTT 5. Default 5. */
  protocolVersion?: 5 | 4;
  /**
   * `rejectUnauthorized: false` skips verifying the broker's certificate: with `requireTls`
   * that is refused unless `allowUntrusted` says it is meant, and it is warned about at every start.
   */
  tls?: { caFile?: string; certFile?: string; keyFile?: string; rejectUnauthorized?: boolean; allowUntrusted?: boolean };
  /** Files holding the broker username and password (a trailing newline is ignored). Never logged. */
  usernameFile?: string;
  passwordFile?: string;
  /** Refuse, before any connection, a URL that is not TLS (mqtts:// or wss://). */
  requireTls?: boolean;
  /** Seconds. Default 30. */
  keepalive?: number;
  /** Reconnect delays: doubling from minMs up to maxMs, each drawn from [d/2, d]. Default 500 ms … 30 s. */
  backoff?: { minMs: number; maxMs: number };
  /** Milliseconds to wait for CONNACK. Default 10 000. */
  connectTimeoutMs?: number;
  /** Largest command payload read; larger ones get a `payload_too_large` reply. Default MAX_COMMAND_BYTES. */
  maxCommandBytes?: number;
  commands?: CommandOptions;
  statusInfo: () => StatusInfo;
  logger?: Logger;
}

export interface CommandOptions {
  /** Subscribe to `…/cmd/+` at all. Default true. */
  enabled?: boolean;
  /**
   * Topic filters (with `{site}`, `{gateway}`, `{command}`) an MQTT 5 response topic must
   * match, besides the command's own `…/cmd/{name}/reply`. Default DEFAULT_REPLY_TOPICS.
   */
  replyTopics?: readonly string[];
  /**
   * Every command but `call`, together, for the whole gateway (`call` is limited per
   * channel by its handler, since a gateway's channels each have their own calls).
   * Default 60 a minute, 20 at once.
   */
  rate?: CommandRate;
}

export interface PublishOptions {
  qos: 0 | 1;
  retain: boolean;
  /** MQTT 5 publish properties (ignored on 3.1.1). */
  properties?: IClientPublishOptions['properties'];
}

/**
 * A command handler's answer: the `result` of an ok reply. Throw a CommandError to reply
 * with a specific error code; any other throw replies `failed` with its message.
 */
export type CommandHandler = (command: CommandRequest) => unknown | Promise<unknown>;

export class CommandError extends Error {
  override name = 'CommandError';
  /** What the refusal is about (a channel id): its warnings are throttled per subject. */
  readonly subject: string | undefined;
  /** For `rate_limited`: when a retry may succeed, sent in the reply's error. */
  readonly retryAfterSeconds: number | undefined;
  constructor(
    readonly code: string,
    message: string,
    options: { subject?: string; retryAfterSeconds?: number } = {},
  ) {
    super(message);
    this.subject = options.subject;
    this.retryAfterSeconds = options.retryAfterSeconds;
  }
}

/**
 * What a short anonymous connection attempt found: `this-connection` (the link itself
 * connected with neither a username nor a client certificate, so the broker evidently
 * admits anonymous clients), `accepted` (a connection without them was accepted),
 * `refused`, or `unknown` (no answer in time, or the broker could not be reached).
 */
export type AnonymousAccess = 'this-connection' | 'accepted' | 'refused' | 'unknown';

/** A configuration the link cannot run with; start() rejects with it before any connection. */
export class LinkConfigError extends Error {
  override name = 'LinkConfigError';
}

/** publish() while there is no connection: nothing was sent; the caller keeps the payload. */
export class LinkOfflineError extends Error {
  override name = 'LinkOfflineError';
}

export interface MqttLinkEvents {
  connect: [info: { protocolVersion: 5 | 4; reconnect: boolean }];
  disconnect: [info: { error?: Error }];
}

/** Packets above this are never sent to us by an MQTT 5 broker; keeps a rogue 1 GB publish out of memory. */
const MAX_INCOMING_PACKET_BYTES = 16 * 1024 * 1024;
/** Commands up to this size are parsed before any check, so that their refusals carry the correlationId. */
const EARLY_PARSE_BYTES = 64 * 1024;
/** CONNACK codes meaning "not this protocol version": 3.1.1's 0x01 and MQTT 5's 0x84. */
const UNSUPPORTED_PROTOCOL = new Set([1, 0x84]);

/**
 * The gateway's one MQTT connection: birth and last will on `…/status`, QoS 1 publishes
 * that resolve on PUBACK, commands in with replies out, and reconnection with exponential
 * backoff and jitter.
 *
 * Each connection attempt uses a fresh mqtt.js client with its own reconnect disabled:
 * mqtt.js retries at a fixed period and would resend its in-memory queue on its own,
 * behind the outbox's back and out of seq order. Here a lost connection rejects every
 * pending publish with LinkOfflineError, and the outbox replays them in order.
 *
 * Command replies: to the MQTT 5 response topic with the request's correlation data when
 * the request has one and the ReplyTopicPolicy allows it; otherwise (MQTT 3.1.1 callers,
 * or a refused response topic) to `…/cmd/{name}/reply`, carrying the request's
 * `correlationId` field. A request whose response topic is refused is not run.
 *
 * Who may command the gateway is the broker ACL's decision; the link adds what it can check
 * itself: retained commands are refused (MQTT 5 subscribes with retain-as-published, so a
 * retained command is recognised on live delivery too), and commands are rate-limited.
 */
export class MqttLink extends EventEmitter<MqttLinkEvents> {
  readonly topics: GatewayTopics;
  private readonly log: Logger;
  private client: MqttClient | null = null;
  private baseOptions: IClientOptions | null = null;
  private protocol: 5 | 4;
  private isConnected = false;
  private everConnected = false;
  private stopping = false;
  private attempt = 0;
  private reconnectCount = 0;
  private reconnectTimer: NodeJS.Timeout | null = null;
  private handler: CommandHandler | null = null;
  private readonly inflight = new Set<(err: Error) => void>();
  private readonly startedAt = Date.now();
  private readonly replyTopics: ReplyTopicPolicy;
  private readonly commandRate: CommandRateLimiter;
  private readonly refusals: WarningThrottle;

  constructor(private readonly deps: MqttLinkDeps) {
    super();
    this.topics = gatewayTopics(deps.site, deps.gateway);
    this.log = deps.logger ?? silentLogger;
    this.protocol = deps.protocolVersion ?? 5;
    this.replyTopics = new ReplyTopicPolicy({ topics: this.topics, site: deps.site, gateway: deps.gateway, ...(deps.commands?.replyTopics ? { filters: deps.commands.replyTopics } : {}) });
    this.commandRate = new CommandRateLimiter({ rate: deps.commands?.rate ?? DEFAULT_COMMAND_RATE });
    this.refusals = new WarningThrottle({ logger: this.log });
  }

  get site(): string {
    return this.deps.site;
  }

  get gateway(): string {
    return this.deps.gateway;
  }

  get connected(): boolean {
    return this.isConnected;
  }

  /** Successful connections after the first, since start (for telemetry). */
  get reconnects(): number {
    return this.reconnectCount;
  }

  /** The protocol in use, or the one the next attempt will use. */
  get protocolVersion(): 5 | 4 {
    return this.protocol;
  }

  async start(): Promise<void> {
    if (this.baseOptions) return;
    this.stopping = false;
    this.baseOptions = await this.buildOptions();
    this.connect();
  }

  /**
   * Says goodbye and closes. The retained `offline` status gets `offlineTimeoutMs` (default
   * 2 s, less when the daemon's shutdown has less left) to be acknowledged; without that
   * acknowledgement the socket is dropped so the broker publishes the will instead.
   */
  async stop(options: { offlineTimeoutMs?: number } = {}): Promise<void> {
    const offlineTimeoutMs = Math.max(0, options.offlineTimeoutMs ?? 2000);
    this.stopping = true;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = null;
    const client = this.client;
    this.client = null;
    this.baseOptions = null;
    // Ask the socket, not `isConnected`: a stop between CONNACK and the birth's PUBACK must
    // still say goodbye, or its clean DISCONNECT below would leave "online" retained forever.
    let saidGoodbye = false;
    if (client?.connected) {
      saidGoodbye = await withTimeout(
        this.publishOn(client, this.topics.status, this.statusPayload('offline', 'shutdown'), { qos: 1, retain: true }),
        offlineTimeoutMs,
        `the broker did not acknowledge the offline status within ${offlineTimeoutMs} ms`,
      ).then(
        () => true,
        (err) => {
          this.log.warn({ err: (err as Error).message }, 'could not publish offline status on shutdown');
          return false;
        },
      );
    }
    this.isConnected = false;
    this.failInflight(new LinkOfflineError('MQTT link stopped'));
    this.refusals.stop();
    // A clean DISCONNECT discards the will, so only a link whose own "offline" was
    // acknowledged may send one; otherwise drop the socket and let the broker publish the will.
    if (client) await client.endAsync(!saidGoodbye).catch(() => {});
  }

  /** Resolves once connected (immediately if already), or rejects after `timeoutMs`. */
  waitForConnection(timeoutMs = 30_000): Promise<void> {
    if (this.isConnected) return Promise.resolve();
    return withTimeout(
      new Promise<void>((resolve) => this.once('connect', () => resolve())),
      timeoutMs,
      `no MQTT connection to ${redactUrl(this.deps.url)} within ${timeoutMs} ms`,
    );
  }

  /** Publishes JSON (objects) or raw text/bytes; a QoS 1 publish resolves on PUBACK. */
  publish(topic: string, payload: object | string | Buffer, options: PublishOptions): Promise<void> {
    const client = this.client;
    if (!client || !this.isConnected) {
      return Promise.reject(new LinkOfflineError(`MQTT link to ${redactUrl(this.deps.url)} is not connected; ${topic} was not published`));
    }
    return this.publishOn(client, topic, payload, options);
  }

  /** Republishes the retained online status, e.g. after the active model changed. */
  publishStatus(): Promise<void> {
    return this.publish(this.topics.status, this.statusPayload('online'), { qos: 1, retain: true });
  }

  /** Validates and publishes retained telemetry (QoS 0, as the contract says). */
  publishTelemetry(payload: TelemetryPayload): Promise<void> {
    return this.publish(this.topics.telemetry, parseOrThrow(TelemetryPayload, payload, this.topics.telemetry), { qos: 0, retain: true });
  }

  /** Validates and publishes the retained model state. */
  publishModelState(payload: ModelState): Promise<void> {
    return this.publish(this.topics.model, parseOrThrow(ModelState, payload, this.topics.model), { qos: 1, retain: true });
  }

  /** The one handler of every validated command except `ping`, which the link answers itself. */
  onCommand(handler: CommandHandler): void {
    this.handler = handler;
  }

  /**
   * The mqtt.js options this link connects with (TLS files and credentials read, every
   * check applied; no will, no protocol version), without connecting: `ser-edge doctor`
   * tests the broker with them. Rejects with LinkConfigError as start() would.
   */
  connectionOptions(): Promise<IClientOptions> {
    return this.buildOptions();
  }

  private async buildOptions(): Promise<IClientOptions> {
    const { deps } = this;
    let url: URL;
    try {
      url = new URL(deps.url);
    } catch {
      throw new LinkConfigError(`MQTT url ${JSON.stringify(redactUrl(deps.url))} is not a URL: use mqtts://host:8883 or mqtt://host:1883`);
    }
    const secure = url.protocol === 'mqtts:' || url.protocol === 'wss:';
    if (!['mqtt:', 'mqtts:', 'ws:', 'wss:', 'tcp:', 'ssl:', 'tls:'].includes(url.protocol)) {
      throw new LinkConfigError(`MQTT url ${redactUrl(deps.url)} has unsupported scheme ${url.protocol}: use mqtts:// (TLS) or mqtt://`);
    }
    if (deps.requireTls && !secure) {
      throw new LinkConfigError(
        `MQTT url ${redactUrl(deps.url)} is not TLS but requireTls is set: use an mqtts:// (or wss://) broker URL, or turn requireTls off for a development broker`,
      );
    }
    if (!secure && (deps.tls?.caFile || deps.tls?.certFile || deps.tls?.keyFile)) {
      this.log.warn({ url: redactUrl(deps.url) }, 'TLS files are configured but the MQTT url is not mqtts://: they are not used');
    }
    const options: IClientOptions = {
      clientId: deps.clientId,
      keepalive: deps.keepalive ?? 30,
      connectTimeout: deps.connectTimeoutMs ?? 10_000,
      reconnectPeriod: 0,
      clean: true,
      resubscribe: false,
    };
    if (deps.tls?.caFile) options.ca = await readSecretFile(deps.tls.caFile, 'tls.caFile');
    if (deps.tls?.certFile) options.cert = await readSecretFile(deps.tls.certFile, 'tls.certFile');
    if (deps.tls?.keyFile) options.key = await readSecretFile(deps.tls.keyFile, 'tls.keyFile');
    if (Boolean(deps.tls?.certFile) !== Boolean(deps.tls?.keyFile)) {
      throw new LinkConfigError('MQTT tls.certFile and tls.keyFile go together: set both for a client certificate, or neither');
    }
    options.rejectUnauthorized = deps.tls?.rejectUnauthorized ?? true;
    if (secure && !options.rejectUnauthorized) {
      if (deps.requireTls && !deps.tls?.allowUntrusted) {
        throw new LinkConfigError(
          'MQTT tls.rejectUnauthorized is false but requireTls is set: the broker\'s certificate would not be checked, so anyone on the path could pose as it; ' +
            'give the broker\'s CA in tls.caFile and drop rejectUnauthorized, or set tls.allowUntrusted to accept that knowingly',
        );
      }
      // Said at every start, so an untrusted link cannot be forgotten once set up.
      this.log.warn(
        { url: redactUrl(deps.url), allowUntrusted: deps.tls?.allowUntrusted ?? false },
        "TLS without verifying the broker's certificate (tls.rejectUnauthorized is false): the connection is encrypted but anyone on the path can pose as the broker; give its CA and drop rejectUnauthorized",
      );
    }
    if (deps.usernameFile) options.username = (await readSecretFile(deps.usernameFile, 'usernameFile')).toString('utf8').replace(/\r?\n$/, '');
    if (deps.passwordFile) options.password = (await readSecretFile(deps.passwordFile, 'passwordFile')).toString('utf8').replace(/\r?\n$/, '');
    return options;
  }

  private connect(): void {
    if (this.stopping || !this.baseOptions) return;
    const protocolVersion = this.protocol;
    const options: IClientOptions = {
      ...this.baseOptions,
      protocolVersion,
      will: {
        topic: this.topics.status,
        payload: Buffer.from(JSON.stringify(this.statusPayload('offline', 'lost'))),
        qos: 1,
        retain: true,
      },
    };
    // Above the command limit (update.maxInlineBytes), so a command over it still arrives and gets its payload_too_large reply.
    const maximumPacketSize = Math.max(MAX_INCOMING_PACKET_BYTES, Math.ceil((this.deps.maxCommandBytes ?? MAX_COMMAND_BYTES) * 1.5));
    if (protocolVersion === 5) options.properties = { maximumPacketSize, sessionExpiryInterval: 0 };
    this.log.debug({ url: redactUrl(this.deps.url), protocolVersion }, 'connecting to MQTT broker');
    const client = mqtt.connect(this.deps.url, options);
    this.client = client;
    let fallback = false;

    client.on('connect', () => {
      if (this.client !== client) return;
      void this.onConnected(client, protocolVersion);
    });
    client.on('message', (topic, payload, packet) => {
      if (this.client !== client) return;
      void this.onMessage(client, topic, payload, packet);
    });
    client.on('error', (err) => {
      const code = (err as Error & { code?: unknown }).code;
      if (protocolVersion === 5 && typeof code === 'number' && UNSUPPORTED_PROTOCOL.has(code)) {
        fallback = true;
        this.log.warn({ url: redactUrl(this.deps.url) }, 'broker refused MQTT 5; falling back to MQTT 3.1.1');
        return;
      }
      this.log.warn({ url: redactUrl(this.deps.url), err: err.message, code }, 'MQTT connection error');
    });
    client.on('close', () => {
      if (this.client !== client) return;
      const wasConnected = this.isConnected;
      this.isConnected = false;
      this.failInflight(new LinkOfflineError(`MQTT connection to ${redactUrl(this.deps.url)} closed before the broker acknowledged`));
      client.end(true);
      if (wasConnected) this.emit('disconnect', {});
      if (this.stopping) return;
      let delay: number;
      if (fallback) {
        this.protocol = 4;
        delay = 0;
      } else {
        delay = backoffDelay(this.attempt++, this.deps.backoff ?? { minMs: 500, maxMs: 30_000 });
      }
      this.log.info({ delayMs: Math.round(delay), attempt: this.attempt }, 'MQTT connection closed; reconnecting');
      this.reconnectTimer = setTimeout(() => {
        this.reconnectTimer = null;
        this.connect();
      }, delay);
    });
  }

  private async onConnected(client: MqttClient, protocolVersion: 5 | 4): Promise<void> {
    try {
      await Promise.all([
        // Retain-as-published keeps a retained command's flag on live delivery too, so it can be refused (MQTT 5 only).
        this.deps.commands?.enabled === false ? undefined : client.subscribeAsync(this.topics.commandFilter, protocolVersion === 5 ? { qos: 1, rap: true } : { qos: 1 }),
        this.publishOn(client, this.topics.status, this.statusPayload('online'), { qos: 1, retain: true }),
      ]);
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'birth or command subscription failed; reconnecting');
      client.end(true);
      return;
    }
    if (this.client !== client || !client.connected) return;
    const reconnect = this.everConnected;
    if (reconnect) this.reconnectCount++;
    this.everConnected = true;
    this.attempt = 0;
    this.isConnected = true;
    this.log.info({ url: redactUrl(this.deps.url), protocolVersion, reconnect }, 'MQTT connected');
    this.emit('connect', { protocolVersion, reconnect });
  }

  private publishOn(client: MqttClient, topic: string, payload: object | string | Buffer, options: PublishOptions): Promise<void> {
    const body = typeof payload === 'string' || Buffer.isBuffer(payload) ? payload : JSON.stringify(payload);
    return new Promise<void>((resolve, reject) => {
      const fail = (err: Error) => reject(err);
      this.inflight.add(fail);
      const publishOptions: IClientPublishOptions = { qos: options.qos, retain: options.retain };
      if (options.properties && this.protocol === 5) publishOptions.properties = options.properties;
      client.publish(topic, body, publishOptions, (err) => {
        this.inflight.delete(fail);
        if (err) reject(err);
        else resolve();
      });
    });
  }

  private failInflight(err: Error): void {
    const pending = [...this.inflight];
    this.inflight.clear();
    for (const fail of pending) fail(err);
  }

  private statusPayload(state: 'online' | 'offline', reason?: 'shutdown' | 'lost'): StatusPayload {
    const info = this.deps.statusInfo();
    // Validated like every other payload: the birth and the last will are what a central
    // server reads first, and a bad model name or version must fail here, not there.
    return parseOrThrow(StatusPayload, {
      schema: SCHEMA_VERSION,
      state,
      ts: new Date().toISOString(),
      site: this.deps.site,
      gateway: this.deps.gateway,
      ...(reason ? { reason } : {}),
      version: info.version,
      model: info.model,
      backend: info.backend,
      protocol: this.protocol === 5 ? '5' : '3.1.1',
    }, this.topics.status);
  }

  /**
   * Whether the broker admits anonymous clients, checked as cheaply as honesty allows: if
   * this link connected with neither a username nor a client certificate, the broker
   * evidently does (`this-connection`); otherwise one short extra connection to the same
   * broker, without username, password or certificate (but trusting the same CA), says
   * `accepted` or `refused`, and is closed at once. It checks only that the broker lets
   * such a client in, not what its ACL then lets it do.
   */
  async anonymousAccess(timeoutMs = 3000): Promise<AnonymousAccess> {
    const base = this.baseOptions;
    if (base === null) return 'unknown';
    const { username, password: _password, cert, key: _key, ...rest } = base;
    if (username === undefined && cert === undefined) return 'this-connection';
    return new Promise<AnonymousAccess>((resolve) => {
      const probe = mqtt.connect(this.deps.url, {
        ...rest,
        clientId: `${this.deps.clientId}-anonymous-check-${randomBytes(3).toString('hex')}`,
        protocolVersion: this.protocol,
        connectTimeout: timeoutMs,
        reconnectPeriod: 0,
        clean: true,
        ...(this.protocol === 5 ? { properties: { sessionExpiryInterval: 0 } } : {}),
      });
      let settled = false;
      const settle = (answer: AnonymousAccess) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        probe.end(true);
        resolve(answer);
      };
      const timer = setTimeout(() => settle('unknown'), timeoutMs + 500);
      probe.on('connect', () => settle('accepted'));
      probe.on('error', (err) => {
        const code = (err as Error & { code?: unknown }).code;
        // A CONNACK refusal carries a number; a TLS handshake that wants a client certificate fails with an SSL error.
        settle(typeof code === 'number' || (typeof code === 'string' && code.startsWith('ERR_SSL')) ? 'refused' : 'unknown');
      });
      probe.on('close', () => settle('refused'));
    });
  }

  /** Never throws: a bad command costs an error reply, not the daemon. */
  private async onMessage(client: MqttClient, topic: string, payload: Buffer, packet: IPublishPacket): Promise<void> {
    const name = commandNameOf(this.topics, topic);
    if (name === null) return;
    if (packet.retain && payload.length === 0) {
      // Someone clearing a retained command: the broker passes the empty retained publish on; nothing to run or answer.
      this.log.debug({ topic }, 'a retained command was cleared');
      return;
    }
    const ownReplyTopic = `${this.topics.base}/cmd/${name}/reply`;
    const responseTopic = packet.properties?.responseTopic;
    const correlationData = packet.properties?.correlationData;
    const replyTopicRefusal = responseTopic === undefined ? null : this.replyTopics.refusal(responseTopic, name);
    // A refused response topic gets nothing: the refusal goes to the command's own reply topic.
    const to = responseTopic !== undefined && replyTopicRefusal === null ? responseTopic : ownReplyTopic;
    let correlationId: string | undefined;
    const reply = async (body: { ok: true; result: unknown } | { ok: false; error: CommandReply['error'] & object }) => {
      const message: CommandReply = {
        schema: SCHEMA_VERSION,
        command: name,
        ...(correlationId !== undefined ? { correlationId } : {}),
        ts: new Date().toISOString(),
        ...body,
      };
      try {
        await this.publishOn(client, to, parseOrThrow(CommandReply, message, to), { qos: 1, retain: false, ...(correlationData ? { properties: { correlationData } } : {}) });
      } catch (err) {
        this.log.warn({ command: name, topic: to, err: (err as Error).message }, 'could not publish command reply');
      }
    };
    /** Refusals are logged at most once per command, code and subject every 30 s, with a count of the rest. */
    const refuse = (code: string, message: string, details: { subject?: string; retryAfterSeconds?: number; fields?: object } = {}) => {
      const known = isCommandName(name) ? name : '(unknown)';
      this.refusals.warn(
        `${known}\u0000${code}\u0000${details.subject ?? ''}`,
        { command: name, code, ...(details.subject !== undefined ? { subject: details.subject } : {}), ...details.fields, message },
        'command refused',
      );
      return reply({ ok: false, error: { code, message, ...(details.retryAfterSeconds !== undefined ? { retryAfterSeconds: details.retryAfterSeconds } : {}) } });
    };

    try {
      const limit = this.deps.maxCommandBytes ?? MAX_COMMAND_BYTES;
      let json: unknown;
      let jsonError: Error | undefined;
      let parsedJson = false;
      const parseJson = () => {
        if (parsedJson) return;
        parsedJson = true;
        try {
          json = JSON.parse(payload.toString('utf8'));
        } catch (err) {
          jsonError = err as Error;
        }
        if (json && typeof json === 'object' && typeof (json as { correlationId?: unknown }).correlationId === 'string') {
          correlationId = ((json as { correlationId: string }).correlationId).slice(0, 128);
        }
      };
      // A small command is parsed first, so every refusal can carry its correlationId; a
      // large one (a model bundle) only once it is past the rate limit.
      if (payload.length <= EARLY_PARSE_BYTES) parseJson();
      if (replyTopicRefusal !== null) {
        return await refuse(
          'reply_topic_refused',
          `response topic ${JSON.stringify(responseTopic)} refused (${replyTopicRefusal}); the command was not run. ` +
            `Use ${ownReplyTopic} or a topic under commands.replyTopics`,
          { fields: { responseTopic } },
        );
      }
      if (packet.retain) {
        // A retained command would run again on every reconnect: a model install loop.
        return await refuse('retained_command', `commands must not be retained; publish to ${topic} with retain=false, and clear the retained one with an empty retained publish`);
      }
      if (name !== 'call') {
        // `call` is limited per channel by its handler; everything else shares one bucket per gateway.
        const granted = this.commandRate.take();
        if (!granted.ok) {
          const { ratePerMinute, burst } = this.commandRate.limits;
          const retryAfterSeconds = Math.ceil(granted.retryAfterMs / 1000);
          return await refuse('rate_limited', `too many commands: this gateway takes at most ${burst} at once and ${ratePerMinute} a minute besides cmd/call; ${topic} was not run, retry in ${retryAfterSeconds} s`, { retryAfterSeconds });
        }
      }
      if (payload.length > limit) {
        return await refuse('payload_too_large', `command payload of ${payload.length} bytes on ${topic} exceeds the ${limit}-byte limit`);
      }
      parseJson();
      if (jsonError !== undefined) {
        return await refuse('invalid_json', `command payload on ${topic} is not JSON: ${(jsonError as Error).message}`);
      }
      if (!isCommandName(name)) {
        return await refuse('unknown_command', `unknown command ${JSON.stringify(name)} on ${topic}; known commands: ${Object.keys(COMMAND_SCHEMAS).join(', ')}`);
      }
      const version = json && typeof json === 'object' ? (json as { schema?: unknown }).schema : undefined;
      if (version !== SCHEMA_VERSION) {
        return await refuse('unsupported_schema', `command on ${topic} has schema ${JSON.stringify(version)}; this gateway speaks schema ${SCHEMA_VERSION}`);
      }
      const parsed = COMMAND_SCHEMAS[name].safeParse(json);
      if (!parsed.success) {
        return await refuse('invalid_payload', `command ${name} on ${topic} is invalid: ${describeIssues(parsed.error)}`);
      }
      const request = { name, payload: parsed.data } as CommandRequest;
      if (request.name === 'ping') {
        const info = this.deps.statusInfo();
        return await reply({ ok: true, result: { pong: true, version: info.version, uptimeSeconds: Math.round((Date.now() - this.startedAt) / 1000) } });
      }
      if (!this.handler) return await refuse('not_ready', `no handler for command ${name} yet; retry once the gateway has started`);
      let result: unknown;
      try {
        result = await this.handler(request);
      } catch (err) {
        if (err instanceof CommandError) {
          return await refuse(err.code, `command ${name} failed: ${err.message}`, {
            ...(err.subject !== undefined ? { subject: err.subject } : {}),
            ...(err.retryAfterSeconds !== undefined ? { retryAfterSeconds: err.retryAfterSeconds } : {}),
          });
        }
        return await refuse('failed', `command ${name} failed: ${(err as Error).message ?? String(err)}`);
      }
      return await reply({ ok: true, result: result ?? null });
    } catch (err) {
      this.log.error({ command: name, err: (err as Error).message }, 'command handling failed unexpectedly');
    }
  }
}

/** Exponential backoff with "equal jitter": the delay for `attempt` (0-based) lies in [d/2, d], d = min(max, min·2^attempt). */
export function backoffDelay(attempt: number, backoff: { minMs: number; maxMs: number }, random: () => number = Math.random): number {
  const ceiling = Math.min(backoff.maxMs, backoff.minMs * 2 ** Math.min(attempt, 30));
  return ceiling / 2 + (random() * ceiling) / 2;
}

/** The URL without user info, fit for logs and error messages. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.username || u.password) {
      u.username = '***';
      u.password = '';
    }
    return u.toString();
  } catch {
    return '(unparsable url)';
  }
}

async function readSecretFile(path: string, key: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (err) {
    // The path is fine to show; the content never is.
    throw new LinkConfigError(`cannot read MQTT ${key} ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}; check the path and its permissions`);
  }
}

function parseOrThrow<T>(schema: { safeParse(v: unknown): { success: true; data: T } | { success: false; error: import('zod').ZodError } }, value: unknown, topic: string): T {
  const r = schema.safeParse(value);
  if (!r.success) throw new Error(`payload for ${topic} does not match its schema: ${describeIssues(r.error)}`);
  return r.data;
}

function withTimeout<T>(promise: Promise<T>, ms: number, message = `timed out after ${ms} ms`): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    promise,
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(new Error(message)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}
