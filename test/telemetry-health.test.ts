import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { TelemetryPayload } from '../src/mqtt/payload-schemas.js';
import { HealthProbe } from '../src/telemetry/health-probe.js';

/** A fake filesystem root holding `files` (path relative to the root → content). */
async function fakeRoot(files: Record<string, string>): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), 'ser-sysfs-'));
  for (const [path, content] of Object.entries(files)) {
    await mkdir(dirname(join(root, path)), { recursive: true });
    await writeFile(join(root, path), content);
  }
  return root;
}

async function healthUnder(files: Record<string, string>) {
  const root = await fakeRoot(files);
  try {
    return await new HealthProbe({ stateDir: root, sysfsRoot: root }).read();
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

const gpuSchema = TelemetryPayload.shape.health.shape.gpu;

test('on a Jetson Nano the GPU load (per mille) and the GPU-therm zone (millidegrees) come from sysfs', async () => {
  const health = await healthUnder({
    'proc/device-tree/model': 'NVIDIA Jetson Nano Developer Kit\0',
    'sys/devices/gpu.0/load': '427\n',
    'sys/class/thermal/thermal_zone0/type': 'CPU-therm\n',
    'sys/class/thermal/thermal_zone0/temp': '41000\n',
    'sys/class/thermal/thermal_zone2/type': 'GPU-therm\n',
    'sys/class/thermal/thermal_zone2/temp': '38500\n',
  });
  assert.equal(health.gpu?.loadPercent, 42.7);
  assert.equal(health.gpu?.temperatureC, 38.5);
  assert.ok(gpuSchema.safeParse(health.gpu).success, 'the telemetry gpu shape');
});

test('on a Jetson Orin the GPU load is read from its platform device and the gpu-thermal zone', async () => {
  const health = await healthUnder({
    'etc/nv_tegra_release': '# R36 (release), REVISION: 3.0\n',
    'sys/devices/platform/17000000.ga10b/load': '1000\n',
    'sys/class/thermal/thermal_zone1/type': 'gpu-thermal\n',
    'sys/class/thermal/thermal_zone1/temp': '52250\n',
  });
  assert.equal(health.gpu?.loadPercent, 100);
  assert.equal(health.gpu?.temperatureC, 52.3);
});

test('a Jetson GPU without a thermal zone still reports its load, with no temperature', async () => {
  const health = await healthUnder({
    'proc/device-tree/model': 'NVIDIA Jetson Xavier NX Developer Kit\0',
    'sys/devices/gpu.0/load': '0\n',
  });
  assert.deepEqual({ loadPercent: health.gpu?.loadPercent, temperatureC: health.gpu?.temperatureC }, { loadPercent: 0, temperatureC: undefined });
});

test('a machine that is not a Jetson reports no GPU, even with a GPU load file', async () => {
  const health = await healthUnder({ 'sys/devices/gpu.0/load': '500\n' });
  assert.equal(health.gpu, undefined);
});
