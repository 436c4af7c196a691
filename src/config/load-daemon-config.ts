import { readFileSync } from 'node:fs';
import { homedir, hostname } from 'node:os';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import type { z } from 'zod';
import { daemonConfigSchema, PATH_KEYS, PATH_LIST_KEYS, type DaemonConfig } from './daemon-config.js';
import { defaultModelDir, firmwareConfigDir, isShippedModelDir } from './package-paths.js';

/** A config that cannot be used, naming where (file and key) and what is wrong. */
export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

/** The validated configuration with every derived default filled in. */
export type ResolvedConfig = DaemonConfig & {
  gateway: string;
  stateDir: string;
  /** `allowUnsigned` as it applies: the config's, else true only for the shipped models/default. */
  model: DaemonConfig['model'] & { dir: string; allowUnsigned: boolean };
  outbox: DaemonConfig['outbox'] & { dir: string };
};

export interface LoadedConfig {
  config: ResolvedConfig;
  /** Where the settings came from, lowest precedence first (profiles, the site file, the environment). */
  layers: string[];
}

/** One source of settings: a profile, the site file, the built-in default, or the environment. */
interface ConfigLayer {
  name: string;
  values: Record<string, unknown>;
}

/**
 * Environment variables that override the files, for containers and systemd drop-ins.
 * Only settings an operator changes per machine; everything else belongs in the site file.
 */
export const ENVIRONMENT_KEYS: Record<string, { path: string[]; type: 'string' | 'number' }> = {
  SER_EDGE_MQTT_URL: { path: ['mqtt', 'url'], type: 'string' },
  SER_EDGE_SITE: { path: ['site'], type: 'string' },
  SER_EDGE_GATEWAY: { path: ['gateway'], type: 'string' },
  SER_EDGE_LOG_LEVEL: { path: ['logLevel'], type: 'string' },
  SER_EDGE_MODEL_DIR: { path: ['model', 'dir'], type: 'string' },
  SER_EDGE_STATE_DIR: { path: ['stateDir'], type: 'string' },
  SER_EDGE_TELEMETRY_INTERVAL: { path: ['telemetry', 'intervalSeconds'], type: 'number' },
};

/**
 * What `ser-edge run` uses without --config: the generic profile, one demo channel, and
 * (no broker url) the embedded broker, so the README's first command works on any machine.
 */
export const BUILT_IN_DEFAULT: Record<string, unknown> = {
  extends: 'generic-linux',
  printFlags: true,
  sources: [{ type: 'demo', channels: [{ id: 'demo', role: 'customer' }] }],
};

const MAX_EXTENDS_DEPTH = 8;

export interface LoadOptions {
  /** The site file; the built-in default when absent. */
  file?: string;
  env?: NodeJS.ProcessEnv;
  /** Where `extends: "<profile>"` is looked up; the package's firmware-config/ by default. */
  profileDir?: string;
}

/**
 * Builds the daemon's configuration: profile (`extends`, recursively) ← site file ←
 * environment, objects merged key by key, arrays and values replaced. Validation runs
 * once on the merged result, and each problem is reported against the layer that set
 * the offending key, so the message names the file to edit.
 */
export function loadDaemonConfig(options: LoadOptions = {}): LoadedConfig {
  const env = options.env ?? process.env;
  const profileDir = options.profileDir ?? firmwareConfigDir();
  const top: ConfigLayer = options.file === undefined ? { name: 'built-in default', values: structuredClone(BUILT_IN_DEFAULT) } : readLayer(resolve(options.file));
  const chain = withProfiles(top, profileDir, options.file === undefined ? process.cwd() : dirname(resolve(options.file)));
  const envLayers = environmentLayers(env);
  const layers = [...chain, ...envLayers];

  let merged: Record<string, unknown> = {};
  for (const layer of layers) merged = mergeValues(merged, layer.values) as Record<string, unknown>;
  delete merged.extends;

  const parsed = daemonConfigSchema.safeParse(merged);
  if (!parsed.success) throw new ConfigError(describeIssues(parsed.error.issues, layers));
  const config = parsed.data;
  const conflict = settingsConflict(config);
  if (conflict !== null) throw new ConfigError(`invalid config: ${originOf(conflict.path, layers)}: ${formatPath(conflict.path)}: ${conflict.message}`);
  const stateDir = config.stateDir ?? env.STATE_DIRECTORY?.split(':')[0] ?? join(env.XDG_STATE_HOME ?? join(homedir(), '.local', 'state'), 'ser-edge');
  const modelDir = config.model.dir ?? defaultModelDir();
  return {
    config: {
      ...config,
      gateway: config.gateway ?? topicSafeHostname(),
      stateDir,
      // The shipped bundle comes with the program itself: whoever could change it could change the code too.
      model: { ...config.model, dir: modelDir, allowUnsigned: config.model.allowUnsigned ?? isShippedModelDir(modelDir) },
      outbox: { ...config.outbox, dir: config.outbox.dir ?? join(stateDir, 'outbox') },
    },
    layers: layers.map((l) => l.name),
  };
}

/**
 * What the schema cannot see one key at a time: settings that each validate but cannot
 * go together. Reported against the key to change, like the schema's own problems.
 */
function settingsConflict(config: DaemonConfig): { path: PropertyKey[]; message: string } | null {
  const seen = new Map<string, string>();
  for (const [s, source] of config.sources.entries()) {
    for (const [c, channel] of source.channels.entries()) {
      const path = ['sources', s, 'channels', c, 'id'];
      const first = seen.get(channel.id);
      if (first !== undefined) {
        return { path, message: `channel id "${channel.id}" is already used by ${first}; every headset channel needs its own id (it names the channel's MQTT topics and cmd/call)` };
      }
      seen.set(channel.id, formatPath(path.slice(0, -1)));
    }
  }
  const tls = config.mqtt.tls;
  if (config.mqtt.requireTls && tls && !tls.rejectUnauthorized && !tls.allowUntrusted) {
    return {
      path: ['mqtt', 'tls', 'rejectUnauthorized'],
      message:
        "false with mqtt.requireTls would accept any certificate the broker shows, so anyone on the path could pose as it; " +
        'give the broker\'s CA in mqtt.tls.ca and remove rejectUnauthorized, or set mqtt.tls.allowUntrusted: true to accept that knowingly (the daemon then warns at every start)',
    };
  }
  return null;
}

function topicSafeHostname(): string {
  return hostname().replace(/[^A-Za-z0-9_-]/g, '-') || 'gateway';
}

function readLayer(file: string): ConfigLayer {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new ConfigError(`${file}: cannot read the config file (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
  }
  let values: unknown;
  try {
    values = JSON.parse(text);
  } catch (error) {
    throw new ConfigError(`${file}: not valid JSON: ${(error as Error).message}`);
  }
  if (!isPlainObject(values)) throw new ConfigError(`${file}: the config must be a JSON object`);
  resolvePaths(values, dirname(file));
  return { name: file, values };
}

/** The layer and the profiles it extends, base first. */
function withProfiles(top: ConfigLayer, profileDir: string, baseDir: string): ConfigLayer[] {
  const chain = [top];
  let current = top;
  let dir = baseDir;
  while (current.values.extends !== undefined) {
    const ref = current.values.extends;
    if (typeof ref !== 'string' || ref === '') throw new ConfigError(`${current.name}: extends: expected a profile name or a file path`);
    if (chain.length > MAX_EXTENDS_DEPTH) throw new ConfigError(`${current.name}: extends: more than ${MAX_EXTENDS_DEPTH} levels; is there a cycle?`);
    const file = /[\\/]|\.json$/.test(ref) ? resolve(dir, ref) : join(profileDir, `${ref}.json`);
    if (chain.some((l) => l.name === file)) throw new ConfigError(`${current.name}: extends: "${ref}" is already in the chain (a cycle)`);
    try {
      current = readLayer(file);
    } catch (error) {
      if (!/[\\/]|\.json$/.test(ref) && (error as Error).message.includes('cannot read')) {
        throw new ConfigError(`${chain[chain.length - 1]!.name}: extends: no profile "${ref}" in ${profileDir}; use one of the profile names there (without .json) or a path`);
      }
      throw error;
    }
    dir = dirname(file);
    chain.unshift(current);
  }
  return chain;
}

function environmentLayers(env: NodeJS.ProcessEnv): ConfigLayer[] {
  const layers: ConfigLayer[] = [];
  for (const [name, { path, type }] of Object.entries(ENVIRONMENT_KEYS)) {
    const raw = env[name];
    if (raw === undefined || raw === '') continue;
    let value: unknown = raw;
    if (type === 'number') value = /^-?\d+(\.\d+)?$/.test(raw.trim()) ? Number(raw) : raw;
    const values: Record<string, unknown> = {};
    setPath(values, path, value);
    if (PATH_KEYS.some((k) => k.join('.') === path.join('.'))) resolvePaths(values, process.cwd());
    layers.push({ name: `environment variable ${name}`, values });
  }
  return layers;
}

function resolvePaths(values: Record<string, unknown>, dir: string): void {
  for (const path of PATH_KEYS) {
    const parent = getPath(values, path.slice(0, -1));
    const key = path[path.length - 1]!;
    if (isPlainObject(parent) && typeof parent[key] === 'string' && parent[key] !== '' && !isAbsolute(parent[key])) {
      parent[key] = resolve(dir, parent[key] as string);
    }
  }
  for (const path of PATH_LIST_KEYS) {
    const list = getPath(values, path);
    if (!Array.isArray(list)) continue;
    list.forEach((entry, at) => {
      if (typeof entry === 'string' && entry !== '' && !isAbsolute(entry)) list[at] = resolve(dir, entry);
    });
  }
  if (Array.isArray(values.sources)) {
    for (const source of values.sources) {
      if (isPlainObject(source) && typeof source.path === 'string' && source.path !== '' && !isAbsolute(source.path)) {
        source.path = resolve(dir, source.path);
      }
    }
  }
}

function describeIssues(issues: z.core.$ZodIssue[], layers: ConfigLayer[]): string {
  const lines = issues.map((issue) => {
    const keys = issue.code === 'unrecognized_keys' ? issue.keys.map((k) => [...issue.path, k]) : [issue.path];
    return keys.map((path) => {
      const key = formatPath(path) || '(top level)';
      const what = issue.code === 'unrecognized_keys' ? 'unknown key; check its spelling and nesting (see schemas/config.schema.json)' : issue.message;
      return `${originOf(path, layers)}: ${key}: ${what}`;
    });
  });
  const flat = lines.flat();
  return flat.length === 1 ? `invalid config: ${flat[0]}` : `invalid config (${flat.length} problems):\n  ${flat.join('\n  ')}`;
}

/** The last layer that set the key (or its nearest set parent): the one whose edit fixes it. */
function originOf(path: readonly PropertyKey[], layers: ConfigLayer[]): string {
  for (let depth = path.length; depth >= 0; depth--) {
    for (let i = layers.length - 1; i >= 0; i--) {
      if (getPath(layers[i]!.values, path.slice(0, depth)) !== undefined) return layers[i]!.name;
    }
  }
  return layers[layers.length - 1]?.name ?? 'config';
}

function formatPath(path: readonly PropertyKey[]): string {
  return path.reduce<string>((out, key) => (typeof key === 'number' ? `${out}[${key}]` : out === '' ? String(key) : `${out}.${String(key)}`), '');
}

function getPath(value: unknown, path: readonly PropertyKey[]): unknown {
  let at = value;
  for (const key of path) {
    if (at === null || typeof at !== 'object') return undefined;
    at = (at as Record<PropertyKey, unknown>)[key];
  }
  return at;
}

function setPath(target: Record<string, unknown>, path: readonly string[], value: unknown): void {
  let at = target;
  for (const key of path.slice(0, -1)) {
    if (!isPlainObject(at[key])) at[key] = {};
    at = at[key] as Record<string, unknown>;
  }
  at[path[path.length - 1]!] = value;
}

function mergeValues(base: unknown, override: unknown): unknown {
  if (!isPlainObject(base) || !isPlainObject(override)) return structuredClone(override);
  const out: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(override)) out[key] = key in base ? mergeValues(base[key], value) : structuredClone(value);
  return out;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}
