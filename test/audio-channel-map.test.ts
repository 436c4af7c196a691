import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AudioInputError } from '../src/audio/audio-source.js';
import { ChannelMappingError, validateChannelMapping, type ChannelMapping } from '../src/audio/channel-map.js';

const stereo = { description: 'mic:hw:1,0', channelCount: 2 };
const desk: ChannelMapping = [
  { index: 0, id: 'desk7-customer', role: 'customer' },
  { index: 1, id: 'desk7-agent', role: 'agent' },
];

test('a mapping within the source channels is accepted', () => {
  assert.doesNotThrow(() => validateChannelMapping(desk, stereo));
});

test('a channel index beyond the source is refused naming the channel and how many channels there are', () => {
  assert.throws(
    () => validateChannelMapping([{ index: 3, id: 'desk7-customer', role: 'customer' }], stereo),
    (error: unknown) =>
      error instanceof ChannelMappingError &&
      error instanceof AudioInputError &&
      error.message.includes('channel desk7-customer: index 3 does not exist: the source has 2 channels (indexes 0–1)') &&
      error.message.includes('mic:hw:1,0'),
  );
});

test('a channel id used twice is refused', () => {
  assert.throws(() => validateChannelMapping([{ index: 0, id: 'a', role: 'customer' }, { index: 1, id: 'a', role: 'agent' }], stereo), /channel id "a" is used twice/);
});

test('a channel index mapped twice is refused', () => {
  assert.throws(() => validateChannelMapping([{ index: 0, id: 'a', role: 'customer' }, { index: 0, id: 'b', role: 'agent' }], stereo), /channel index 0 is mapped twice/);
});

test('a channel id that would break an MQTT topic is refused', () => {
  assert.throws(() => validateChannelMapping([{ index: 0, id: 'desk/7', role: 'customer' }], stereo), /channel id "desk\/7"/);
});

test('an empty mapping is refused', () => {
  assert.throws(() => validateChannelMapping([], stereo), /mapping is empty/);
});
