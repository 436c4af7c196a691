import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { loadDaemonConfig } from '../src/config/load-daemon-config.js';
import { Daemon } from '../src/daemon.js';
import { manifestDigest } from '../src/daemon/load-model.js';
import { liveModel } from '../src/daemon/model-slot.js';
import { DEFAULT_TRACKER_CONFIG } from '../src/urgency/urgency-tracker.js';
import { loadClassifier } from '../src/model/load-classifier.js';
import { TelemetryPayload, UrgencyEvent } from '../src/mqtt/payload-schemas.js';
import { tempDir } from './helpers/audio-fixtures.js';
import { labSiteConfig, writeVoiceWav } from './helpers/daemon-process.js';
import { writeKnnBundles } from './helpers/live-models.js';
import { connectSubscriber, MOSQUITTO_MISSING, startMosquitto, type Mosquitto } from './helpers/mosquitto.js';
import { assertMatchesPublishedSchema } from './helpers/published-schemas.js';

/**
 * The daemon's wiring of the live model (daemon.modelSlot), against a real mosquitto: what
 * a shadow trial and a switch look like from the central side. The update stage that
 * drives the slot over MQTT is tested on its own; here the test drives it directly.
 */

const dir = tempDir('ser-edge-live-model-');
let broker: Mosquitto;
let bundles: { synthetic: string; contrary: string };
let callWav: string;

before(async () => {
  if (MOSQUITTO_MISSING) return;
  [broker, bundles] = await Promise.all([startMosquitto(), writeKnnBundles(dir)]);
  callWav = await writeVoiceWav(join(dir, 'call.wav'), [['angry', 5], ['calm', 7]]);
});

after(async () => {
  await broker?.stop();
});

test('a running daemon reports a shadow trial in telemetry without publishing its flags, and after the switch its flags name the new model', { skip: MOSQUITTO_MISSING }, async () => {
  const site = { dir, brokerUrl: broker.url, modelDir: bundles.synthetic };
  const configFile = join(dir, 'gw-live.json');
  // Real time: the call (angry, then calm) is still going when the models change.
  const source = { type: 'file', path: callWav, realtime: true, loop: true, channels: [{ id: 'desk-1', role: 'customer' }] };
  writeFileSync(configFile, JSON.stringify(labSiteConfig(site, 'gw-live', [source])));
  const { config } = loadDaemonConfig({ file: configFile, env: {} });
  const daemon = new Daemon({ config, logger: pino({ level: 'silent' }), version: '0.0.0-test' });
  const sub = await connectSubscriber(broker.url, ['ser/v1/lab/gw-live/channel/+/urgency', 'ser/v1/lab/gw-live/telemetry']);
  const urgency = (m: { topic: string }) => m.topic.endsWith('/urgency');
  try {
    assert.equal(daemon.modelSlot, undefined, 'no slot before start');
    await daemon.start();
    const slot = daemon.modelSlot!;
    assert.deepEqual(slot.current.ref, { name: 'synthetic', version: '1.0.0', sha256: await manifestDigest(bundles.synthetic) });
    const first = UrgencyEvent.parse((await sub.waitFor(urgency, 20_000, 'the first flag')).json());
    assert.deepEqual(first.model, { name: 'synthetic', version: '1.0.0' });

    const staged = liveModel(await loadClassifier(bundles.contrary), { tracker: DEFAULT_TRACKER_CONFIG, weights: config.urgency.weights }, await manifestDigest(bundles.contrary));
    const trial = slot.startShadow(staged, 10);
    const reported = await sub.waitFor(
      (m) => m.topic.endsWith('/telemetry') && (m.json<TelemetryPayload>().pipeline.shadow?.windows ?? 0) >= 3,
      20_000,
      'telemetry with a shadow trial of a few windows',
    );
    assertMatchesPublishedSchema('telemetry.schema.json', reported.json());
    const shadow = TelemetryPayload.parse(reported.json()).pipeline.shadow!;
    assert.deepEqual(shadow.model, { name: 'contrary', version: '1.0.0' });
    assert.equal(shadow.startedAt, new Date(trial.startedAtMs).toISOString());
    assert.equal(shadow.done, false);
    assert.ok(shadow.agreement.emotion !== null && shadow.agreement.emotion < 1, `the contrary model disagrees: ${shadow.agreement.emotion}`);
    assert.ok(
      sub.messages.filter(urgency).every((m) => UrgencyEvent.parse(m.json()).model.name === 'synthetic'),
      'during the trial, every flag on the broker is the active model\'s',
    );

    // Promote: the trial ends and its model becomes the active one between two windows.
    const old = slot.activate(slot.endShadow()!);
    old.classifier.dispose();
    const switchedAt = sub.messages.length;
    const next = await sub.waitFor((m) => urgency(m) && UrgencyEvent.parse(m.json()).model.name === 'contrary', 30_000, 'a flag of the new model');
    assert.deepEqual(UrgencyEvent.parse(next.json()).model, { name: 'contrary', version: '1.0.0' });
    assert.ok(sub.messages.indexOf(next) >= switchedAt);
    const after = await sub.waitFor((m) => m.topic.endsWith('/telemetry') && sub.messages.indexOf(m) > switchedAt, 10_000, 'telemetry after the switch');
    assert.equal(after.json<TelemetryPayload>().pipeline.shadow, undefined, 'no shadow field once no model is staged');
  } finally {
    await sub.end();
    await daemon.stop();
  }
});
