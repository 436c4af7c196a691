import { redactUrl } from './mqtt-link.js';

/** What mqtt.js connects with: plain and TLS TCP, and WebSocket. */
const MQTT_SCHEMES = ['mqtt:', 'mqtts:', 'ws:', 'wss:', 'tcp:', 'ssl:', 'tls:'];

/**
 * What is wrong with a broker URL as a person typed it, or null. `name` is where it came
 * from (`--broker`, `mqtt.url`), so the message says what to change. Without this, a URL
 * with no scheme (`127.0.0.1:1883`) reaches mqtt.js, which takes "127.0.0.1:" for the
 * scheme and fails deep in the protocol ("Invalid header flag bits").
 */
export function brokerUrlProblem(url: string, name: string): string | null {
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(url.trim())) {
    // Never echo a password: `user:secret@host:1883` is shown without its credentials.
    const bare = url.trim().replace(/^[^@/]*@/, '').replace(/^\/+/, '');
    return `${name} ${bare} has no scheme; add the scheme: mqtt://${bare} (mqtts://${bare} for TLS)`;
  }
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return `${name} ${url.replace(/\/\/[^@/]*@/, '//')} is not a URL: write it as mqtt://host:1883, or mqtts://host:8883 for TLS`;
  }
  if (!MQTT_SCHEMES.includes(parsed.protocol)) {
    return `${name} ${redactUrl(url)} is not an MQTT URL (${parsed.protocol}//): use mqtt://host:1883, mqtts://host:8883 for TLS, or ws:// / wss:// for MQTT over WebSocket`;
  }
  if (parsed.hostname === '') return `${name} ${redactUrl(url)} names no host: write it as ${parsed.protocol}//host:port`;
  return null;
}
