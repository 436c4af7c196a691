import { z } from 'zod';
import { EMOTIONS } from '../model/emotions.js';
import { URGENCY_DRIVERS } from '../urgency/call-urgency.js';
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
    score: unit.describe('Smoothed urgency score (of the driver behind the level)'),
    driver: z
      .enum(URGENCY_DRIVERS)
      .optional()
      .describe("Why the call is at this level: angry or sad (a model with a trained urgency head follows each on its own tracker; a sad caller can be flagged while the window's top emotion is still neutral), or weighted (one score, Σ weight × probability); absent from older gateways, so consumers must not require it"),
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

/**
 * What a shadow trial has seen so far: the staged model ran on the same live windows as
 * the active one, without publishing. Agreement is the share of windows where the two
 * named the same top emotion, and where their smoothed urgency levels were the same.
 */
export const ShadowTrialReport = z
  .object({
    startedAt: timestamp,
    endsAt: timestamp.describe('When the trial stops comparing; the staged model waits for promote or discard after it'),
    done: z.boolean().describe('The trial time is over'),
    windows: z.number().int().min(0).describe('Windows both models classified'),
    agreement: z.object({ emotion: unit.nullable(), level: unit.nullable() }).describe('Shares of those windows where both agreed; null before the first window'),
    flagsPerHour: z
      .object({ active: z.number().min(0), shadow: z.number().min(0) })
      .describe('Raises each model made or would have made, per hour of trial time'),
    flags: z.object({ active: z.number().int().min(0), shadow: z.number().int().min(0) }),
  })
  .describe('Shadow trial of the staged model');
export type ShadowTrialReport = z.infer<typeof ShadowTrialReport>;

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
      windows: z.number().int().min(0).optional().describe('Windows classified since start, all channels (a model switch neither loses nor repeats one)'),
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
      shadow: ShadowTrialReport.extend({ model: modelRef.describe('The staged model under trial') })
        .optional()
        .describe('Present while a model is staged for a shadow trial (running or done, until model.promote or model.discard)'),
    }),
    /** Agent channels only: a well-being signal, never a flag about the customer. */
    agentStrain: z.record(z.string(), z.looseObject({ score: unit })).optional(),
  })
  .meta({ $id: 'telemetry.schema.json', title: 'ser-edge telemetry (ser/v1/{site}/{gateway}/telemetry, retained)' });
export type TelemetryPayload = z.infer<typeof TelemetryPayload>;

/** A bundle as the model store names it: its manifest's name and version, and the sha256 of its manifest.json. */
const bundleRef = modelRef.extend({ sha256: z.string().regex(/^[0-9a-f]{64}$/).optional().describe('sha256 of the bundle\'s manifest.json (which lists every file\'s sha256)') });

/** Why an install, a rollback or a start-up switch ended as it did; every failed step has its own code. */
export const INSTALL_REASONS = [
  // success
  'installed',
  'staged',
  'promoted',
  'discarded',
  'rolled_back',
  // transport
  'too_large',
  'download_failed',
  'download_timeout',
  'size_mismatch',
  'sha256_mismatch',
  'bad_archive',
  'unsafe_archive',
  // trust
  'unsigned',
  'unknown_key',
  'bad_signature',
  // contents
  'invalid_manifest',
  'file_mismatch',
  'incompatible_features',
  'self_test_failed',
  'load_failed',
  // policy and state
  'not_newer',
  'already_active',
  'busy',
  'no_previous',
  'no_staged',
  'store_failed',
  'failed_start',
] as const;
export type InstallReason = (typeof INSTALL_REASONS)[number];
const installReason = z.enum(INSTALL_REASONS);

export const ModelState = z
  .object({
    schema,
    ts: timestamp,
    site: id,
    gateway: id,
    active: bundleRef
      .extend({
        activatedAt: timestamp.optional(),
        source: z.enum(['config', 'store']).optional().describe('config: the bundle model.dir names; store: one installed remotely, kept in the state directory'),
      })
      .nullable(),
    previous: bundleRef.nullable().describe('Where model.rollback returns to'),
    staged: bundleRef
      .extend({ stagedAt: timestamp, mode: z.literal('shadow'), shadow: ShadowTrialReport.optional() })
      .nullable()
      .optional()
      .describe('A model under shadow trial, waiting for model.promote or model.discard'),
    lastInstall: z
      .object({
        ok: z.boolean(),
        reason: installReason.describe('installed/staged/promoted/discarded/rolled_back when ok, else the step that failed'),
        ts: timestamp,
        name: z.string().optional(),
        version: z.string().optional(),
        message: z.string().optional().describe('What went wrong and what to do, when not ok'),
        /** Older gateways sent the failure here. */
        error: errorInfo.optional(),
      })
      .nullable(),
    lastRollback: z
      .object({
        ts: timestamp,
        cause: z.enum(['command', 'failed_start']).describe('command: model.rollback; failed_start: the new model did not come up'),
        from: bundleRef,
        to: bundleRef,
        message: z.string().optional(),
      })
      .nullable()
      .optional(),
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
 * The largest command payload read at all: a model bundle inline. The default
 * `update.maxInlineBytes` (8 MiB of packed bundle) is this much base64 with room for the
 * rest of the command; the link takes its limit from the config.
 */
export const MAX_COMMAND_BYTES = commandBytesFor(8 * 1024 * 1024);

/** The command payload size that carries `inlineBytes` of packed bundle as base64, with 64 KiB for the rest. */
export function commandBytesFor(inlineBytes: number): number {
  return Math.ceil(inlineBytes / 3) * 4 + 64 * 1024;
}

const correlationId = z.string().min(1).max(128).optional().describe('Echoed in the reply; MQTT 3.1.1 callers match replies by it');
const base64 = z.string().regex(/^[A-Za-z0-9+/]*={0,2}$/, 'base64');
const sha256Hex = z.string().regex(/^[0-9a-f]{64}$/, '64 lower-case hex digits');

export const PingCommand = z.strictObject({ schema, correlationId }).meta({ $id: 'command-ping.schema.json', title: 'ser-edge command: ping (…/cmd/ping)' });

export const ModelInstallCommand = z
  .strictObject({
    schema,
    correlationId,
    /**
     * The packed bundle (`ser-edge model pack`: a tar of the signed bundle directory),
     * inline or where the gateway downloads it. The signature inside it is what makes it
     * trusted; the url's size and sha256 only guard the transfer.
     */
    bundle: z.union([
      z.strictObject({ inline: base64.min(1).describe('The packed bundle, base64 (at most update.maxInlineBytes decoded)') }),
      z.strictObject({
        url: z.url({ protocol: /^https?$/ }).describe('http(s) URL of the packed bundle'),
        bytes: z.number().int().positive().describe('Its exact size in bytes'),
        sha256: sha256Hex.describe('Its sha256'),
      }),
    ]),
    /** activate (default): switch to it now; shadow: stage it and run it beside the active one without publishing. */
    mode: z.enum(['activate', 'shadow']).optional(),
    shadowMinutes: z.number().positive().max(7 * 24 * 60).optional().describe('Length of the shadow trial (mode shadow; default 60)'),
    /** Install even when the version is not newer than the active one (a deliberate downgrade). */
    force: z.boolean().optional(),
  })
  .refine((c) => c.shadowMinutes === undefined || c.mode === 'shadow', { message: 'shadowMinutes needs mode "shadow"', path: ['shadowMinutes'] })
  .meta({ $id: 'command-model-install.schema.json', title: 'ser-edge command: model.install (…/cmd/model.install)' });
export type ModelInstallCommand = z.infer<typeof ModelInstallCommand>;

export const ModelRollbackCommand = z
  .strictObject({ schema, correlationId })
  .meta({ $id: 'command-model-rollback.schema.json', title: 'ser-edge command: model.rollback (…/cmd/model.rollback)' });

export const ModelPromoteCommand = z
  .strictObject({ schema, correlationId })
  .meta({ $id: 'command-model-promote.schema.json', title: 'ser-edge command: model.promote, activate the model under shadow trial (…/cmd/model.promote)' });

export const ModelDiscardCommand = z
  .strictObject({ schema, correlationId })
  .meta({ $id: 'command-model-discard.schema.json', title: 'ser-edge command: model.discard, drop the model under shadow trial (…/cmd/model.discard)' });

/** The `result` of a successful model.install, promote, discard or rollback reply. */
export const ModelCommandResult = z
  .object({
    reason: installReason,
    active: bundleRef.nullable(),
    previous: bundleRef.nullable(),
    staged: bundleRef.nullable(),
  })
  .meta({ $id: 'model-command-result.schema.json', title: 'ser-edge model command reply result (the `result` of a model.* reply)' });
export type ModelCommandResult = z.infer<typeof ModelCommandResult>;

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
  'model.promote': ModelPromoteCommand,
  'model.discard': ModelDiscardCommand,
  'config.reload': ConfigReloadCommand,
  call: CallCommand,
} as const;
export type CommandName = keyof typeof COMMAND_SCHEMAS;
export const COMMAND_NAMES = Object.keys(COMMAND_SCHEMAS) as CommandName[];

export type CommandRequest = { [K in CommandName]: { name: K; payload: z.infer<(typeof COMMAND_SCHEMAS)[K]> } }[CommandName];

export function isCommandName(name: string): name is CommandName {
  return Object.hasOwn(COMMAND_SCHEMAS, name);
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
  'command-model-promote.schema.json': { schema: ModelPromoteCommand, io: 'input' },
  'command-model-discard.schema.json': { schema: ModelDiscardCommand, io: 'input' },
  'model-command-result.schema.json': { schema: ModelCommandResult, io: 'input' },
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
