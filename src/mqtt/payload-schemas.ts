import { z } from 'zod';
import { EMOTIONS } from '../model/emotions.js';
import { URGENCY_LEVELS } from '../urgency/urgency-score.js';

/**
 * Payloads of the MQTT contract v1. Every payload carries `schema: 1`; a consumer that sees
 * another number must not guess. Within v1 the gateway only adds optional fields, so the
 * exported JSON Schemas of what the gateway publishes allow unknown properties, while
 * commands (what the gateway accepts) are strict: a misspelt field is refused, not ignored.
 */
export const SCHEMA_VERSION = 1;

const schema = z.literal(SCHEMA_VERSION).describe('Payload schema version of the ser-edge MQTT contract');
const id = z.string().min(1).max(128);
const timestamp = z.iso.datetime().describe('ISO 8601 UTC timestamp');
const ulid = z.string().regex(/^[0-9A-HJKMNP-TV-Z]{26}$/, 'a ULID (26 Crockford base32 characters)');
const unit = z.number().min(0).max(1);
const level = z.enum(URGENCY_LEVELS);
const modelRef = z.object({ name: z.string().min(1), version: z.string().min(1) });
export type ModelRef = z.infer<typeof modelRef>;
const errorInfo = z.object({ code: z.string().min(1), message: z.string() });
const commandErrorInfo = errorInfo.extend({
  /** With `rate_limited`: seconds until the same command would be taken again. */
  retryAfterSeconds: z.number().int().min(0).optional(),
});

// ---------------------------------------------------------------- published by the gateway

export const StatusPayload = z
  .object({
    schema,
    state: z.enum(['online', 'offline']),
    /** For the will this is when it was registered: the broker cannot stamp the moment of death. */
    ts: timestamp,
    site: id,
    gateway: id,
    /** Why the gateway is offline: `shutdown` said goodbye, `lost` is the broker's last will. */
    reason: z.enum(['shutdown', 'lost']).optional(),
    version: z.string().min(1).describe('ser-edge software version'),
    model: modelRef.nullable().describe('Active model bundle, null when none is loaded'),
    backend: z.string().nullable().describe('Inference backend in use (tensorflow, wasm, cpu, int8-knn…)'),
    protocol: z.enum(['5', '3.1.1']).optional().describe('MQTT protocol the gateway connected with'),
  })
  .meta({ $id: 'status.schema.json', title: 'ser-edge gateway status (ser/v1/{site}/{gateway}/status, retained)' });
export type StatusPayload = z.infer<typeof StatusPayload>;

export const UrgencyEvent = z
  .object({
    schema,
    id: ulid.describe('Unique event id; a replay after an outage repeats it, so consumers drop duplicates by id'),
    seq: z.number().int().min(1).describe('Per-gateway, strictly increasing across restarts (gaps allowed)'),
    ts: timestamp,
    site: id,
    gateway: id,
    channel: id,
    callId: id,
    kind: z.enum(['raise', 'clear']).describe('raise: the level went up; clear: it came down'),
    level,
    previousLevel: level.optional(),
    score: unit.describe('Smoothed urgency score'),
    emotion: z.enum(EMOTIONS).describe('Top emotion of the window that caused the change'),
    probabilities: z.partialRecord(z.enum(EMOTIONS), unit).describe('Emotion label to probability'),
    model: modelRef,
    window: z.object({ start: timestamp, end: timestamp }).describe('Wall-clock span of the audio window behind the change'),
  })
  .meta({ $id: 'urgency-event.schema.json', title: 'ser-edge urgency flag event (…/channel/{channel}/urgency)' });
export type UrgencyEvent = z.infer<typeof UrgencyEvent>;

export const ChannelState = z
  .object({
    schema,
    ts: timestamp,
    site: id,
    gateway: id,
    channel: id,
    /** Null between calls. */
    callId: id.nullable(),
    level,
    score: unit,
    /** The event that set this level; null after a reset at a call boundary. */
    eventId: ulid.nullable(),
    emotion: z
      .enum(EMOTIONS)
      .nullable()
      .optional()
      .describe("Top emotion of the window behind the event that set this level; null at a call boundary (no flag in this call yet, or between calls); absent from older gateways, so consumers must not require it"),
  })
  .meta({ $id: 'channel-state.schema.json', title: 'ser-edge channel state (…/channel/{channel}/state, retained)' });
export type ChannelState = z.infer<typeof ChannelState>;

const percentiles = z.object({ p50: z.number().min(0), p99: z.number().min(0) });
const droppedCounts = z.object({ low: z.number().int().min(0), medium: z.number().int().min(0), high: z.number().int().min(0) });
export type DroppedCounts = z.infer<typeof droppedCounts>;

export const TelemetryPayload = z
  .object({
    schema,
    ts: timestamp,
    site: id,
    gateway: id,
    health: z.looseObject({
      cpuLoad: z.number().min(0).describe('CPU load, percent of all cores'),
      temperatureC: z.number().optional(),
      memory: z.looseObject({ totalBytes: z.number().min(0), usedBytes: z.number().min(0) }),
      diskFreeBytes: z.number().min(0),
      gpu: z.looseObject({ loadPercent: z.number().min(0).optional(), temperatureC: z.number().optional() }).optional(),
      uptimeSeconds: z.number().min(0),
    }),
    pipeline: z.looseObject({
      backend: z.string(),
      latencyMs: z.record(z.string(), percentiles).describe('Stage name to latency percentiles'),
      windowsPerSecond: z.number().min(0),
      droppedWindows: z.number().int().min(0).describe('Windows not classified since start, all channels (each channel has its own count)'),
      outboxDepth: z.number().int().min(0),
      outboxDropped: droppedCounts.describe('Events dropped because the outbox was full, by level'),
      outboxRejected: z
        .number()
        .int()
        .min(0)
        .optional()
        .describe("Events the broker refused for good (e.g. ACL), moved to the gateway's rejected.jsonl, since start"),
      outboxBytes: z.number().int().min(0).optional().describe("Bytes of the outbox's segment files on disk"),
      outboxSetAside: z
        .array(z.string())
        .optional()
        .describe('Damaged outbox files moved aside (into the outbox directory\'s damaged/) for inspection at this start'),
      reconnects: z.number().int().min(0),
      channels: z.record(
        z.string(),
        z.looseObject({
          role: z.enum(['customer', 'agent']),
          callId: z.string().nullable().optional(),
          level: level.optional(),
          droppedWindows: z
            .number()
            .int()
            .min(0)
            .optional()
            .describe("Windows of this channel not classified since start: one per hop of audio skipped because the gateway fell behind real time, and any window with unusable model output; pipeline.droppedWindows is their sum"),
        }),
      ),
    }),
    /** Agent channels only: a well-being signal, never a flag about the customer. */
    agentStrain: z.record(z.string(), z.looseObject({ score: unit })).optional(),
  })
  .meta({ $id: 'telemetry.schema.json', title: 'ser-edge telemetry (ser/v1/{site}/{gateway}/telemetry, retained)' });
export type TelemetryPayload = z.infer<typeof TelemetryPayload>;

export const ModelState = z
  .object({
    schema,
    ts: timestamp,
    site: id,
    gateway: id,
    active: modelRef.extend({ sha256: z.string().optional(), activatedAt: timestamp.optional() }).nullable(),
    previous: modelRef.extend({ sha256: z.string().optional() }).nullable(),
    lastInstall: z
      .object({ ok: z.boolean(), ts: timestamp, name: z.string().optional(), version: z.string().optional(), error: errorInfo.optional() })
      .nullable(),
  })
  .meta({ $id: 'model-state.schema.json', title: 'ser-edge model state (ser/v1/{site}/{gateway}/model, retained)' });
export type ModelState = z.infer<typeof ModelState>;

export const CommandReply = z
  .object({
    schema,
    ok: z.boolean(),
    command: z.string().describe('The command name from the request topic'),
    /** Echoed from the request, for callers without MQTT 5 correlation data. */
    correlationId: z.string().optional(),
    ts: timestamp,
    error: commandErrorInfo.optional(),
    result: z.unknown().optional(),
  })
  .meta({ $id: 'command-reply.schema.json', title: 'ser-edge command reply' });
export type CommandReply = z.infer<typeof CommandReply>;

// ---------------------------------------------------------------- accepted by the gateway

/**
 * The largest command payload read at all. A base64 model bundle is the only big command;
 * 4 MiB of bundle is 5.3 MiB of base64, far above today's int8 KNN and GRU bundles.
 */
export const MAX_COMMAND_BYTES = 6 * 1024 * 1024;
/** Decoded bundle size cap, checked again (with hashes and signature) by the update stage. */
export const MAX_MODEL_BUNDLE_BYTES = 4 * 1024 * 1024;

const correlationId = z.string().min(1).max(128).optional().describe('Echoed in the reply; MQTT 3.1.1 callers match replies by it');
const base64 = z.string().regex(/^[A-Za-z0-9+/]*={0,2}$/, 'base64');
const bundleFileName = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/, 'a plain file name (no directories, not starting with a dot)');

export const PingCommand = z.strictObject({ schema, correlationId }).meta({ $id: 'command-ping.schema.json', title: 'ser-edge command: ping (…/cmd/ping)' });

export const ModelInstallCommand = z
  .strictObject({
    schema,
    correlationId,
    bundle: z.strictObject({
      /** Bytes, not parsed JSON, so the signature covers exactly what was signed. */
      manifest: base64.describe('manifest.json, base64'),
      files: z.record(bundleFileName, base64).describe('Bundle file name to base64 content'),
      signature: base64.describe('ed25519 signature, base64'),
    }),
  })
  .refine((c) => bundleBytes(c.bundle) <= MAX_MODEL_BUNDLE_BYTES, {
    message: `model bundle is larger than ${MAX_MODEL_BUNDLE_BYTES} bytes decoded`,
    path: ['bundle'],
  })
  .meta({ $id: 'command-model-install.schema.json', title: 'ser-edge command: model.install (…/cmd/model.install)' });

export const ModelRollbackCommand = z
  .strictObject({ schema, correlationId })
  .meta({ $id: 'command-model-rollback.schema.json', title: 'ser-edge command: model.rollback (…/cmd/model.rollback)' });

export const ConfigReloadCommand = z
  .strictObject({ schema, correlationId })
  .meta({ $id: 'command-config-reload.schema.json', title: 'ser-edge command: config.reload (…/cmd/config.reload)' });

export const CallCommand = z
  .strictObject({ schema, correlationId, action: z.enum(['start', 'end']), channel: id, callId: id })
  .meta({ $id: 'command-call.schema.json', title: 'ser-edge command: call start/end from the telephony system (…/cmd/call)' });

/** Command name (the last topic level) to the schema of its payload. */
export const COMMAND_SCHEMAS = {
  ping: PingCommand,
  'model.install': ModelInstallCommand,
  'model.rollback': ModelRollbackCommand,
  'config.reload': ConfigReloadCommand,
  call: CallCommand,
} as const;
export type CommandName = keyof typeof COMMAND_SCHEMAS;
export const COMMAND_NAMES = Object.keys(COMMAND_SCHEMAS) as CommandName[];

export type CommandRequest = { [K in CommandName]: { name: K; payload: z.infer<(typeof COMMAND_SCHEMAS)[K]> } }[CommandName];

export function isCommandName(name: string): name is CommandName {
  return Object.hasOwn(COMMAND_SCHEMAS, name);
}

function bundleBytes(bundle: { manifest: string; files: Record<string, string>; signature: string }): number {
  const decoded = (b64: string) => Math.floor((b64.length * 3) / 4);
  return decoded(bundle.manifest) + Object.values(bundle.files).reduce((n, f) => n + decoded(f), 0);
}

/** Every schema exported to `schemas/`, by file name. */
export const EXPORTED_SCHEMAS: Record<string, { schema: z.ZodType; io: 'input' | 'output' }> = {
  'status.schema.json': { schema: StatusPayload, io: 'input' },
  'urgency-event.schema.json': { schema: UrgencyEvent, io: 'input' },
  'channel-state.schema.json': { schema: ChannelState, io: 'input' },
  'telemetry.schema.json': { schema: TelemetryPayload, io: 'input' },
  'model-state.schema.json': { schema: ModelState, io: 'input' },
  'command-reply.schema.json': { schema: CommandReply, io: 'input' },
  'command-ping.schema.json': { schema: PingCommand, io: 'input' },
  'command-model-install.schema.json': { schema: ModelInstallCommand, io: 'input' },
  'command-model-rollback.schema.json': { schema: ModelRollbackCommand, io: 'input' },
  'command-config-reload.schema.json': { schema: ConfigReloadCommand, io: 'input' },
  'command-call.schema.json': { schema: CallCommand, io: 'input' },
};

/**
 * The JSON Schema text committed as `schemas/{file}`. `io: 'input'` keeps z.object's
 * unknown keys allowed (what consumers of a v1 payload should do), while strictObject
 * still says `additionalProperties: false` for commands.
 */
export function jsonSchemaText(file: string): string {
  const entry = EXPORTED_SCHEMAS[file];
  if (!entry) throw new Error(`no exported MQTT schema named ${file}: known are ${Object.keys(EXPORTED_SCHEMAS).join(', ')}`);
  return `${JSON.stringify(z.toJSONSchema(entry.schema, { io: entry.io, unrepresentable: 'any' }), null, 2)}\n`;
}

/** Compact zod issues as `path: message; …`, for error replies and thrown errors. */
export function describeIssues(error: z.ZodError): string {
  return error.issues
    .slice(0, 8)
    .map((i) => `${i.path.length ? i.path.join('.') : '(payload)'}: ${i.message}`)
    .join('; ');
}
