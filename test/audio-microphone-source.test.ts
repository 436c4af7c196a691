import assert from 'node:assert/strict';
import { chmod, writeFile } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import { after, test } from 'node:test';
import { AudioInputError } from '../src/audio/audio-source.js';
import { findOnPath, openMicrophoneSource } from '../src/audio/microphone-source.js';
import { tempDir } from './helpers/audio-fixtures.js';

const originalPath = process.env.PATH;
after(() => {
  process.env.PATH = originalPath;
});

/** A stand-in `arecord` on PATH: prints `bytes` of silence, complains on stderr, exits with `code`. */
async function fakeRecorderOnPath(script: string): Promise<string> {
  const dir = tempDir('ser-edge-fake-recorder-');
  const binary = join(dir, 'arecord');
  await writeFile(binary, `#!/bin/sh\n${script}\n`);
  await chmod(binary, 0o755);
  process.env.PATH = `${dir}${delimiter}${originalPath}`;
  return dir;
}

test('a recorder missing from PATH is refused naming the binary and its Debian package', async () => {
  process.env.PATH = tempDir('ser-edge-empty-path-');
  try {
    await assert.rejects(openMicrophoneSource({ recorder: 'arecord', device: 'hw:1,0' }), (error: unknown) => {
      assert.ok(error instanceof AudioInputError);
      assert.match(error.message, /mic:hw:1,0/);
      assert.match(error.message, /"arecord" not found on PATH/);
      assert.match(error.message, /apt-get install alsa-utils/);
      return true;
    });
    await assert.rejects(openMicrophoneSource({ recorder: 'rec' }), /apt-get install sox/);
  } finally {
    process.env.PATH = originalPath;
  }
});

test('when the recorder dies the blocks end with an AudioInputError naming the device, exit code and stderr', async () => {
  await fakeRecorderOnPath('head -c 6400 /dev/zero\necho "arecord: audio open error: No such device" >&2\nexit 1');
  try {
    const source = await openMicrophoneSource({ device: 'hw:9,0', blockMs: 100 });
    const blocks: Float32Array[][] = [];
    await assert.rejects(
      (async () => {
        for await (const block of source.blocks()) blocks.push(block);
      })(),
      (error: unknown) => {
        assert.ok(error instanceof AudioInputError);
        assert.match(error.message, /mic:hw:9,0/);
        assert.match(error.message, /exited with code 1/);
        assert.match(error.message, /No such device/);
        return true;
      },
    );
    // 6400 bytes of mono s16le at 16 kHz is 200 ms: two blocks arrive before the failure.
    assert.equal(blocks.length, 2);
  } finally {
    process.env.PATH = originalPath;
  }
});

test('the recorder is asked for raw s16le at the capture rate, channels and device', async () => {
  const dir = await fakeRecorderOnPath('echo "$@" > "$(dirname "$0")/args"\nexit 0');
  try {
    const source = await openMicrophoneSource({ device: 'plughw:1', channels: 2, inputRate: 48000 });
    await assert.rejects(async () => {
      for await (const _ of source.blocks());
    }, AudioInputError);
    const { readFile } = await import('node:fs/promises');
    const args = (await readFile(join(dir, 'args'), 'utf8')).trim();
    assert.match(args, /-D plughw:1/);
    assert.match(args, /-r 48000/);
    assert.match(args, /-c 2/);
    assert.match(args, /-t raw/);
    assert.match(args, /-f S16_LE/);
  } finally {
    process.env.PATH = originalPath;
  }
});

test('closing a microphone source stops the recorder and ends the blocks without an error', async () => {
  await fakeRecorderOnPath('exec cat /dev/zero');
  try {
    const source = await openMicrophoneSource({ blockMs: 50 });
    let count = 0;
    for await (const _ of source.blocks()) {
      if (++count === 3) void source.close();
    }
    assert.ok(count >= 3);
  } finally {
    process.env.PATH = originalPath;
  }
});

test('findOnPath finds an executable the way spawn would', async () => {
  assert.ok((await findOnPath('sh')) !== undefined);
  assert.equal(await findOnPath('no-such-binary-ser-edge'), undefined);
});
