import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { synthesiseVoice, VOICE_STYLES } from '../src/audio/synthetic-voice.js';
import { TelemetryPayload } from '../src/mqtt/payload-schemas.js';
import { writeWav } from './helpers/audio-fixtures.js';
import { daemonTestSite, labSiteConfig, spawnDaemon } from './helpers/daemon-process.js';
import { connectSubscriber } from './helpers/mosquitto.js';

const { site, skip } = daemonTestSite('ser-edge-channel-mapping-', { call: [['angry', 8]] });

const siteConfig = (gateway: string, sources: unknown[]) => labSiteConfig(site, gateway, sources, { retry: { initialMs: 100, maxMs: 200 } });

test('a microphone channel index beyond its channelCount stops start-up with one line naming the key, the channel and the count (exit 2)', { skip }, async () => {
  const file = join(site.dir, 'gw-mic.json');
  const daemon = spawnDaemon(
    file,
    siteConfig('gw-mic', [
      {
        type: 'microphone',
        channelCount: 2,
        channels: [
          { index: 0, id: 'desk-1', role: 'customer' },
          { index: 2, id: 'desk-1-agent', role: 'agent' },
        ],
      },
    ]),
  );
  const { code } = await daemon.exited;
  assert.equal(code, 2);
  const lines = daemon.stderr().trim().split('\n');
  assert.equal(lines.length, 1, daemon.stderr());
  assert.ok(lines[0]!.includes(file), lines[0]);
  assert.match(lines[0]!, /sources\[0\]\.channels\[1\]\.index: channel desk-1-agent: index 2 does not exist: this microphone source has 2 channels \(indexes 0–1\); map an index below channelCount/);
});

test("a file channel index beyond the file's channels is refused once, shown as failed in telemetry, and the other sources run on", { skip, timeout: 30_000 }, async () => {
  const mono = await writeWav(join(site.dir, 'mono.wav'), [synthesiseVoice(VOICE_STYLES.calm, 2, 16000, 9)], 16000, '16');
  const sub = await connectSubscriber(site.broker.url, ['ser/v1/lab/gw-file/telemetry', 'ser/v1/lab/gw-file/channel/+/urgency']);
  const daemon = spawnDaemon(
    join(site.dir, 'gw-file.json'),
    siteConfig('gw-file', [
      { type: 'file', path: mono, realtime: false, loop: true, channels: [{ index: 0, id: 'desk-1' }, { index: 1, id: 'desk-2' }] },
      { type: 'file', path: site.voiceWav, realtime: false, loop: true, channels: [{ index: 0, id: 'desk-3' }] },
    ]),
  );
  try {
    const refusal = await daemon.waitForLog((l) => String(l.msg).startsWith('audio source refused'), 15_000, 'the refusal');
    assert.equal(refusal.level, 50);
    assert.match(String(refusal.msg), /not retried/);
    assert.match(String(refusal.error), /mono\.wav: invalid channel mapping: channel desk-2: index 1 does not exist: the source has 1 channel \(index 0\)/);
    assert.deepEqual(refusal.channels, ['desk-1', 'desk-2']);

    const failed = await sub.waitFor((m) => m.topic.endsWith('/telemetry') && m.json<TelemetryPayload>().pipeline.channels['desk-2']?.state === 'failed', 10_000, 'telemetry showing the refused channels');
    const channels = TelemetryPayload.parse(failed.json()).pipeline.channels;
    assert.match(String(channels['desk-2']!.lastError), /index 1 does not exist/);
    assert.equal(channels['desk-1']!.state, 'failed');
    await sub.waitFor((m) => m.topic.endsWith('/channel/desk-3/urgency'), 20_000, 'a flag from the healthy source');

    // With retries 100–200 ms apart, a retried source would have failed again many times by now.
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const mentions = daemon.logs().filter((l) => l.level === 50 && String(l.error ?? '').includes('mono.wav'));
    assert.equal(mentions.length, 1, `one error line about the source, got ${mentions.map((l) => l.msg).join(' | ')}`);
  } finally {
    daemon.child.kill('SIGTERM');
    await daemon.exited;
    await sub.end();
  }
});
