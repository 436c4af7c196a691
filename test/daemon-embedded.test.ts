import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { tempDir } from './helpers/audio-fixtures.js';
import { spawnDaemon, writeSyntheticModel, writeVoiceWav } from './helpers/daemon-process.js';
import { connectSubscriber } from './helpers/mosquitto.js';

const dir = tempDir('ser-edge-embedded-');

test('with no broker configured, run starts an embedded loopback broker, prints each flag as a line, and serves Prometheus metrics on loopback', async () => {
  // Angry then calm, looped faster than real time: flags are raised and cleared over and
  // over, so a subscriber that connects late (a loaded machine) still sees the next one.
  const [modelDir, wav] = await Promise.all([writeSyntheticModel(dir), writeVoiceWav(join(dir, 'angry-calm.wav'), [['angry', 8], ['calm', 12]])]);
  const daemon = spawnDaemon(join(dir, 'embedded.json'), {
    site: 'lab',
    gateway: 'gw-embedded',
    stateDir: join(dir, 'state'),
    printFlags: true,
    mqtt: { embedded: { port: 0 } },
    model: { dir: modelDir, allowUnsigned: true },
    telemetry: { prometheus: { enabled: true, port: 0 } },
    sources: [{ type: 'file', path: wav, realtime: false, loop: true, channels: [{ id: 'desk-1' }] }],
  });
  try {
    const broker = await daemon.waitForLog((l) => l.msg?.toString().startsWith('no mqtt.url configured') === true, 15_000, 'the embedded broker');
    assert.match(String(broker.url), /^mqtt:\/\/127\.0\.0\.1:\d+$/);
    // aedes speaks MQTT 3.1.1 only.
    const sub = await connectSubscriber(String(broker.url), ['ser/v1/lab/gw-embedded/channel/+/urgency'], { protocolVersion: 4 });
    await sub.waitFor(() => true, 15_000, 'a flag through the embedded broker');
    await sub.end();

    const deadline = Date.now() + 10_000;
    while (!/desk-1 {2}▲ HIGH/.test(daemon.stdout()) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    assert.match(daemon.stdout(), /desk-1 {2}▲ HIGH {4}score 0\.\d{3} {2}angry \d+%  raised  call [0-9A-Z]{26}  #\d+/);

    const prometheus = await daemon.waitForLog((l) => l.msg?.toString().startsWith('Prometheus endpoint') === true, 5000, 'the metrics endpoint');
    assert.match(String(prometheus.url), /^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
    const text = await (await fetch(String(prometheus.url))).text();
    assert.match(text, /^ser_edge_windows_total \d+/m);
    assert.match(text, /^ser_edge_stage_latency_ms\{stage="model",quantile="0\.99"\} [\d.]+/m);
    assert.match(text, /^ser_edge_channel_dropped_windows_total\{channel="desk-1"\} 0$/m);
  } finally {
    daemon.child.kill('SIGTERM');
    assert.equal((await daemon.exited).code, 0);
  }
});
