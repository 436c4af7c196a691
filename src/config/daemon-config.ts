import { z } from 'zod';
import { describeChannelCount } from '../audio/channel-map.js';
import { EMOTIONS } from '../model/emotions.js';
import { DEFAULT_CALL_RATE, DEFAULT_COMMAND_RATE } from '../mqtt/command-rate-limit.js';
import { DEFAULT_REPLY_TOPICS, replyTopicFilterProblem } from '../mqtt/reply-topics.js';
import { trackerOverrideSchema } from '../urgency/call-urgency.js';
import { urgencyThresholdsSchema } from '../urgency/urgency-score.js';
import { DEFAULT_TRACKER_CONFIG } from '../urgency/urgency-tracker.js';

/**
 * The daemon's configuration: what `ser-edge run` reads from a firmware-config profile,
 * the site file and the environment (see load-daemon-config.ts for the layering). Every
 * object is strict, so a misspelt key is an error rather than a silently ignored setting.
 */

/** One topic level: MQTT wildcards, '/' and spaces would break the `ser/v1/{site}/{gateway}` scheme. */
const topicLevel = z.string().regex(/^[A-Za-z0-9_.-]+$/, "use letters, digits, '.', '-' or '_' (it becomes an MQTT topic level)");

export const channelAssignmentSchema = z
  .object({
    /** Zero-based channel of the source (0 = left, 1 = right on a stereo headset tap). */
    index: z.number().int().min(0).default(0),
    /** The channel id in topics: `…/channel/{id}/urgency`. */
    id: z.string().regex(/^[A-Za-z0-9_-]+$/, "use letters, digits, '-' or '_' (it becomes an MQTT topic level)"),
    /** customer: the far end (the caller), flagged; agent: the headset microphone, strain in telemetry only. */
    role: z.enum(['customer', 'agent']).default('customer'),
    /**
     * The call id of this channel's calls when no cmd/call names one, e.g. the id of a
     * recorded or piped call: the first call takes it as is, later ones `{callId}-2`, `-3` …
     * (ids must stay unique per call). The count starts again with the daemon, so it suits
     * sources that carry one call; live headsets are better served by cmd/call or ULIDs.
     * Without it such calls get a ULID.
     */
    callId: z.string().min(1).max(120).optional(),
  })
  .strict();

const channelsField = z.array(channelAssignmentSchema).min(1);

/**
 * Where the config itself says how many channels a source has (a microphone's or stdin's
 * channelCount, the mono demo), an index beyond them is a config error at start-up. A
 * file's count is known only once it is read: the daemon refuses that source then.
 */
function indexesWithin(what: string, count: (source: { channelCount?: number }) => number, fix: string) {
  return (source: { channelCount?: number; channels: { index: number; id: string }[] }, ctx: z.core.$RefinementCtx) => {
    const available = count(source);
    source.channels.forEach(({ index, id }, at) => {
      if (index < available) return;
      ctx.addIssue({
        code: 'custom',
        path: ['channels', at, 'index'],
        message: `channel ${id}: index ${index} does not exist: ${what} has ${describeChannelCount(available)}; ${fix}`,
      });
    });
  };
}

export const microphoneSourceSchema = z
  .object({
    type: z.literal('microphone'),
    /** ALSA device (`hw:1,0`, `plughw:CARD=Headset`); the system default when absent. */
    device: z.string().min(1).optional(),
    recorder: z.enum(['arecord', 'sox', 'rec']).default('arecord'),
    /** Interleaved channels asked of the device. */
    channelCount: z.number().int().min(1).max(32).default(1),
    /** The device's native rate, when resampling here beats ALSA's plug layer. */
    inputRate: z.number().int().positive().optional(),
    channels: channelsField,
  })
  .strict()
  .superRefine(indexesWithin('this microphone source', (s) => s.channelCount ?? 1, 'map an index below channelCount, or raise channelCount to what the device delivers'));

export const fileSourceSchema = z
  .object({
    type: z.literal('file'),
    /** WAV, FLAC or Ogg Opus; relative to the config file that names it. */
    path: z.string().min(1),
    /** Wall-clock pacing, as a live headset would deliver it; false replays as fast as the CPU allows. */
    realtime: z.boolean().default(true),
    loop: z.boolean().default(false),
    channels: channelsField,
  })
  .strict();

export const stdinSourceSchema = z
  .object({
    type: z.literal('stdin'),
    /** Rate of the raw s16le PCM arriving on stdin. */
    inputRate: z.number().int().positive(),
    channelCount: z.number().int().min(1).max(32).default(1),
    channels: channelsField,
  })
  .strict()
  .superRefine(indexesWithin('this stdin source', (s) => s.channelCount ?? 1, 'map an index below channelCount, or raise channelCount to the interleaved channels piped in'));

export const demoSourceSchema = z
  .object({
    type: z.literal('demo'),
    /** Seconds of calm voice, then of angry voice, looping: the flag rises and clears every cycle. */
    calmSeconds: z.number().positive().default(20),
    angrySeconds: z.number().positive().default(20),
    channels: channelsField,
  })
  .strict()
  .superRefine(indexesWithin('the demo voice', () => 1, 'use index 0 (or leave it out), and a source per demo channel'));

export const sourceSchema = z.discriminatedUnion('type', [microphoneSourceSchema, fileSourceSchema, stdinSourceSchema, demoSourceSchema]);
export type SourceConfig = z.infer<typeof sourceSchema>;

/**
 * The whole of a shutdown, from SIGTERM to the last step: the README and the systemd unit
 * promise an exit within 5 s, and `run` exits hard at 4.5 s whatever is still going.
 */
export const SHUTDOWN_DEADLINE_MS = 4000;
/** Kept back from stopping capture and flushing the outbox, for the goodbye: the `offline` status and closing the outbox. */
export const SHUTDOWN_GOODBYE_MS = 1000;

/**
 * The largest `update.maxInlineBytes`: its command (base64, a third larger) must stay well
 * within what an MQTT packet can carry (256 MiB) and what the link accepts (mqtt-link.ts).
 */
export const MAX_INLINE_BYTES = 64 * 1024 * 1024;
/** The default `update.maxInlineBytes`, which the contract's MAX_COMMAND_BYTES is sized for. */
export const DEFAULT_INLINE_BYTES = 8 * 1024 * 1024;

/** A token bucket for commands: `burst` at once, then `ratePerMinute`. */
const commandRateSchema = (defaults: { ratePerMinute: number; burst: number }) =>
  z
    .object({
      ratePerMinute: z.number().positive().max(60_000).default(defaults.ratePerMinute),
      burst: z.number().int().min(1).max(10_000).default(defaults.burst),
    })
    .strict()
    .prefault({});

const replyTopicFilter = z.string().superRefine((filter, ctx) => {
  const problem = replyTopicFilterProblem(filter);
  if (problem !== null) ctx.addIssue({ code: 'custom', message: `not a reply topic filter: ${problem}` });
});

const backoffSchema = z
  .object({
    initialMs: z.number().int().positive().default(1000),
    maxMs: z.number().int().positive().default(60_000),
  })
  .strict();

export const daemonConfigSchema = z
  .object({
    /** JSON Schema reference for editors; ignored. */
    $schema: z.string().optional(),
    /** A firmware-config profile name (`raspberry-pi-4`) or a path to another config file. */
    extends: z.string().min(1).optional(),
    /** Which profile this came from, for telemetry and logs (profiles set it themselves). */
    profile: z.string().default('custom'),
    site: topicLevel.default('demo'),
    /** Defaults to the host name (made topic-safe). */
    gateway: topicLevel.optional(),
    logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    /** Writable state: the outbox lives here unless outbox.dir says otherwise. */
    stateDir: z.string().min(1).optional(),
    /** Print a compact line per flag on stdout (the demo's view); logs go to stderr either way. */
    printFlags: z.boolean().default(false),
    mqtt: z
      .object({
        /** `mqtt://host:1883` or `mqtts://host:8883`. Absent: an embedded broker on 127.0.0.1. */
        url: z.string().regex(/^(mqtts?|wss?):\/\/[^\s]+$/, 'use mqtt://host:port or mqtts://host:port').optional(),
        clientId: z.string().min(1).optional(),
        /** Refuse to connect without TLS (production profiles set it). */
        requireTls: z.boolean().default(false),
        tls: z
          .object({
            ca: z.string().optional(),
            cert: z.string().optional(),
            key: z.string().optional(),
            /** false skips checking the broker's certificate; with requireTls it also needs allowUntrusted. */
            rejectUnauthorized: z.boolean().default(true),
            /** Says that `rejectUnauthorized: false` with `requireTls` is meant; the daemon still warns at every start. */
            allowUntrusted: z.boolean().default(false),
          })
          .strict()
          .optional(),
        /** Credentials are read from files so they never sit in the config, the environment or a log. */
        usernameFile: z.string().optional(),
        passwordFile: z.string().optional(),
        backoff: backoffSchema.prefault({}),
        /**
         * How long shutdown waits for the broker to acknowledge what is queued. At most the
         * shutdown's 4 s less the second kept for the `offline` status, and shortened further
         * when stopping capture took part of the 4 s.
         */
        flushTimeoutMs: z.number().int().min(0).max(SHUTDOWN_DEADLINE_MS - SHUTDOWN_GOODBYE_MS).default(2500),
        /** The broker started when no url is configured: loopback only, port 0 picks a free one. */
        embedded: z
          .object({ port: z.number().int().min(0).max(65535).default(1883) })
          .strict()
          .prefault({}),
      })
      .strict()
      .prefault({}),
    model: z
      .object({
        /** Model bundle directory; the shipped models/default when absent. */
        dir: z.string().min(1).optional(),
        /**
         * GRU bundles: `fused` runs the hand-written int8 kernel (the faster for models this
         * small, on one thread), `tfjs` runs TensorFlow.js on `backends` with `threads`.
         * KNN bundles always run on their int8 kernel.
         */
        runtime: z.enum(['fused', 'tfjs']).default('fused'),
        /** TensorFlow.js backends in order of preference, for models that run on it (`runtime: "tfjs"`). */
        backends: z.array(z.enum(['tensorflow', 'wasm', 'cpu'])).min(1).default(['wasm', 'cpu']),
        /** Threads asked of the TensorFlow.js backend; the log says when the backend cannot use them. */
        threads: z.number().int().min(1).max(64).default(1),
        /**
         * Public-key files (`ser-edge model keygen`'s .pub, PEM) whose signatures this gateway
         * trusts: a signed model.dir bundle must verify against one of them, and so must every
         * bundle installed remotely. Relative to the config file that names them.
         */
        trustedKeys: z
          .array(z.string().min(1, 'expected the path of a public-key file (the .pub `ser-edge model keygen` wrote)'))
          .max(32)
          .default([])
          .superRefine((files, ctx) => {
            files.forEach((file, at) => {
              if (files.indexOf(file) !== at) ctx.addIssue({ code: 'custom', path: [at], message: `${file} is listed twice; list each public key once` });
            });
          }),
        /**
         * Whether a model.dir bundle without a signature may load (with a warning at every
         * start). Absent: true only for the shipped models/default. Never applies to a bundle
         * installed remotely, which must be signed.
         */
        allowUnsigned: z.boolean().optional(),
      })
      .strict()
      .prefault({}),
    audio: z
      .object({
        /** Block length handed from capture to the pipeline. */
        blockMs: z.number().int().min(10).max(1000).default(100),
        /**
         * How far behind real time a live source may fall: from half of it, fewer of the live
         * channels are analysed (the others skip their audio, counted as dropped windows);
         * beyond it, the source skips to the present (README, Capacity and overload).
         */
        maxLagSeconds: z.number().positive().default(5),
        windowSeconds: z.number().positive().max(30).default(3),
        hopSeconds: z.number().positive().max(30).default(1),
      })
      .strict()
      .prefault({}),
    calls: z
      .object({
        /** Without a cmd/call end, this much silence on a channel ends its call. */
        callSilenceSeconds: z.number().positive().default(30),
      })
      .strict()
      .prefault({}),
    urgency: z
      .object({
        // The defaults are the tracker's own, so `classify`, `eval` and the daemon agree.
        smoothing: z.number().gt(0).max(1).default(DEFAULT_TRACKER_CONFIG.smoothing),
        thresholds: urgencyThresholdsSchema.optional(),
        hysteresis: z.number().min(0).max(0.5).default(DEFAULT_TRACKER_CONFIG.hysteresis),
        raiseWindows: z.number().int().min(1).max(20).default(DEFAULT_TRACKER_CONFIG.raiseWindows),
        clearWindows: z.number().int().min(1).max(60).default(DEFAULT_TRACKER_CONFIG.clearWindows),
        /** Site overrides of the bundle's emotion weights (a bundle without a trained urgency head). */
        weights: z.partialRecord(z.enum(EMOTIONS), z.number().min(0).max(1)).optional(),
        /**
         * Site overrides of a bundle's per-emotion trackers (a bundle with a trained urgency
         * head, such as the shipped model, whose own settings the settings above do not change).
         */
        emotions: z.object({ angry: trackerOverrideSchema.optional(), sad: trackerOverrideSchema.optional() }).strict().optional(),
      })
      .strict()
      .prefault({}),
    /**
     * Commands in (`…/cmd/{name}`). Who may send them is the broker ACL's decision; these are
     * what the gateway checks itself.
     */
    commands: z
      .object({
        /** false: no command subscription at all (calls are then bounded by silence only). */
        enabled: z.boolean().default(true),
        /**
         * Topic filters (`+`, `#`; placeholders `{site}`, `{gateway}`, `{command}`) that an MQTT 5
         * response topic must match, besides the command's own `…/cmd/{name}/reply`, which is
         * always allowed. Contract topics (status, telemetry, model, channel state and urgency,
         * command topics, other gateways' replies) are refused whatever these say.
         */
        replyTopics: z.array(replyTopicFilter).max(32).default([...DEFAULT_REPLY_TOPICS]),
        /** cmd/call per channel. */
        call: commandRateSchema(DEFAULT_CALL_RATE),
        /** Every other command (ping, model.*, config.reload), together, per gateway. */
        other: commandRateSchema(DEFAULT_COMMAND_RATE),
      })
      .strict()
      .prefault({}),
    /** Channel retries after a failure: exponential from initialMs, capped at maxMs. */
    retry: backoffSchema.prefault({}),
    outbox: z
      .object({
        dir: z.string().min(1).optional(),
        maxBytes: z.number().int().min(4096).default(16 * 1024 * 1024),
        /** Size of one outbox segment file; on disk the outbox stays within maxBytes + 2 segments + 16 KiB. Default maxBytes / 8, within 4 KiB…1 MiB. */
        segmentBytes: z.number().int().min(4096).max(64 * 1024 * 1024).optional(),
      })
      .strict()
      .prefault({}),
    telemetry: z
      .object({
        intervalSeconds: z.number().min(1).max(3600).default(30),
        prometheus: z
          .object({
            enabled: z.boolean().default(false),
            /** Loopback only: the endpoint has no authentication. */
            host: z.enum(['127.0.0.1', '::1', 'localhost']).default('127.0.0.1'),
            port: z.number().int().min(0).max(65535).default(9464),
          })
          .strict()
          .prefault({}),
      })
      .strict()
      .prefault({}),
    /** Remote model installs (`…/cmd/model.install`): how large, how long, and how a new model is tried. */
    update: z
      .object({
        /** Largest packed bundle carried inline in the command (base64 in the MQTT payload, which is a third larger). */
        maxInlineBytes: z.number().int().min(0).max(MAX_INLINE_BYTES, 'at most 64 MiB (67108864): install a larger bundle by url').default(DEFAULT_INLINE_BYTES),
        /** Largest packed bundle downloaded by url; a download that grows past it is cut off. */
        maxBundleBytes: z.number().int().min(1024).max(1024 * 1024 * 1024, 'at most 1 GiB (1073741824)').default(64 * 1024 * 1024),
        /** The whole download, from the request to its last byte. */
        downloadTimeoutSeconds: z.number().positive().max(3600).default(60),
        /** PEM CA certificate(s) that https downloads are checked against; absent: the system's CAs. Relative to the config file. */
        caFile: z.string().min(1, 'expected the path of a PEM CA certificate file; leave the key out for the system\'s CAs').optional(),
        /** Length of a shadow trial when the install command gives none. */
        shadowMinutes: z.number().positive().max(7 * 24 * 60, 'at most a week (10080 minutes)').default(60),
        /** A newly activated model that fails to come up this many times within startWindowSeconds is rolled back. */
        startAttempts: z.number().int().min(1).max(100).default(3),
        startWindowSeconds: z.number().positive().max(86_400).default(300),
        /** A newly activated model is confirmed (no longer rolled back by itself) once the daemon has run this long with it. */
        confirmAfterSeconds: z.number().positive().max(86_400).default(120),
      })
      .strict()
      .prefault({}),
    sources: z.array(sourceSchema).default([]),
  })
  .strict();

export type DaemonConfig = z.infer<typeof daemonConfigSchema>;
export type ChannelAssignmentConfig = z.infer<typeof channelAssignmentSchema>;

/** Config keys holding file paths: relative values are resolved against the file that sets them. */
export const PATH_KEYS: readonly (readonly string[])[] = [
  ['stateDir'],
  ['model', 'dir'],
  ['update', 'caFile'],
  ['outbox', 'dir'],
  ['mqtt', 'tls', 'ca'],
  ['mqtt', 'tls', 'cert'],
  ['mqtt', 'tls', 'key'],
  ['mqtt', 'usernameFile'],
  ['mqtt', 'passwordFile'],
];

/** Config keys holding lists of file paths, resolved like PATH_KEYS. */
export const PATH_LIST_KEYS: readonly (readonly string[])[] = [['model', 'trustedKeys']];

/** The configuration as JSON Schema (draft 2020-12), for editors and for schemas/config.schema.json. */
export function daemonConfigJsonSchema(): Record<string, unknown> {
  return {
    $id: 'https://ser-edge.dev/schemas/config.schema.json',
    title: 'ser-edge daemon configuration',
    ...z.toJSONSchema(daemonConfigSchema, { io: 'input', unrepresentable: 'any' }),
  };
}

/** The committed file name under schemas/, written by scripts/export-schemas.ts. */
export const CONFIG_SCHEMA_FILE = 'config.schema.json';

export function configJsonSchemaText(): string {
  return `${JSON.stringify(daemonConfigJsonSchema(), null, 2)}\n`;
}
