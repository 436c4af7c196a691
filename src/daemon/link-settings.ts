import type { ResolvedConfig } from '../config/load-daemon-config.js';
import type { MqttLinkDeps } from '../mqtt/mqtt-link.js';
import { commandBytesFor } from '../mqtt/payload-schemas.js';

/** What the config says about the gateway's MQTT connection, in the link's terms. */
export type LinkSettings = Pick<MqttLinkDeps, 'url' | 'clientId' | 'site' | 'gateway' | 'requireTls' | 'backoff' | 'tls' | 'commands' | 'usernameFile' | 'passwordFile' | 'maxCommandBytes'>;

/**
 * The link the daemon connects with, built in one place so that `ser-edge doctor` checks
 * the broker with exactly the TLS files, credentials and client id `run` would use.
 */
export function linkSettings(config: ResolvedConfig, url: string): LinkSettings {
  return {
    url,
    clientId: config.mqtt.clientId ?? `ser-edge-${config.site}-${config.gateway}`,
    site: config.site,
    gateway: config.gateway,
    requireTls: config.mqtt.requireTls,
    backoff: { minMs: config.mqtt.backoff.initialMs, maxMs: config.mqtt.backoff.maxMs },
    ...(config.mqtt.tls
      ? {
          tls: {
            caFile: config.mqtt.tls.ca,
            certFile: config.mqtt.tls.cert,
            keyFile: config.mqtt.tls.key,
            rejectUnauthorized: config.mqtt.tls.rejectUnauthorized,
            allowUntrusted: config.mqtt.tls.allowUntrusted,
          },
        }
      : {}),
    commands: { enabled: config.commands.enabled, replyTopics: config.commands.replyTopics, rate: config.commands.other },
    // The largest command is a model.install carrying update.maxInlineBytes of bundle as base64.
    maxCommandBytes: commandBytesFor(config.update.maxInlineBytes),
    ...(config.mqtt.usernameFile ? { usernameFile: config.mqtt.usernameFile } : {}),
    ...(config.mqtt.passwordFile ? { passwordFile: config.mqtt.passwordFile } : {}),
  };
}
