import { existsSync, readFileSync } from 'node:fs';
import { readdir, readFile, statfs } from 'node:fs/promises';
import { join } from 'node:path';
import si from 'systeminformation';
import type { TelemetryPayload } from '../mqtt/payload-schemas.js';

export type HealthReading = TelemetryPayload['health'];
type GpuReading = NonNullable<HealthReading['gpu']>;

export interface HealthProbeDependencies {
  /** The outbox's directory: its filesystem's free space is reported. */
  stateDir: string;
  /** Where `/sys`, `/proc` and `/etc` are looked up: `/` except in tests. */
  sysfsRoot?: string;
}

/**
 * GPU load files of Jetson boards, in per mille: Nano, TX2 and Xavier expose `gpu.0`;
 * Orin moved the GPU under `platform/`, named by its address and core (ga10b, or gv11b),
 * or `17000000.gpu` on newer kernels.
 */
const JETSON_GPU_LOAD_FILES = [
  'sys/devices/gpu.0/load',
  'sys/devices/platform/gpu.0/load',
  'sys/devices/platform/17000000.ga10b/load',
  'sys/devices/platform/17000000.gv11b/load',
  'sys/devices/platform/17000000.gpu/load',
  'sys/devices/platform/bus@0/17000000.gpu/load',
];

/** Thermal zone types of the GPU: `GPU-therm` up to Xavier, `gpu-thermal` on Orin. */
const JETSON_GPU_THERMAL_TYPES = new Set(['gpu-therm', 'gpu-thermal']);

interface JetsonGpuFiles {
  load: string | null;
  temperature: string | null;
}

/**
 * Reads the gateway's health through systeminformation. The GPU is asked only on a
 * Jetson: systeminformation gets GPU utilisation only from nvidia-smi, which Jetsons do
 * not have, so their GPU load and temperature are read from sysfs (cheap file reads),
 * and si.graphics() — which shells out to lspci-style tools, too slow to run every
 * interval — only when sysfs has neither. Disk space is read with statfs on the state
 * directory, the one filesystem whose filling up would stop the outbox.
 */
export class HealthProbe {
  private readonly stateDir: string;
  private readonly root: string;
  /** The board's name on a Jetson (from the device tree), null elsewhere. */
  private readonly jetson: string | null;
  private gpuFiles: Promise<JetsonGpuFiles> | null = null;

  constructor(dependencies: HealthProbeDependencies) {
    this.stateDir = dependencies.stateDir;
    this.root = dependencies.sysfsRoot ?? '/';
    this.jetson = jetsonBoard(this.root);
  }

  async read(): Promise<HealthReading> {
    const [load, temperature, memory, diskFree, gpu] = await Promise.all([
      si.currentLoad().catch(() => null),
      si.cpuTemperature().catch(() => null),
      si.mem().catch(() => null),
      diskFreeBytes(this.stateDir),
      this.jetson !== null ? this.readJetsonGpu(this.jetson) : Promise.resolve(null),
    ]);
    return {
      cpuLoad: round(load?.currentLoad ?? 0, 1),
      ...(typeof temperature?.main === 'number' && Number.isFinite(temperature.main) ? { temperatureC: round(temperature.main, 1) } : {}),
      memory: {
        totalBytes: memory?.total ?? 0,
        // `active` leaves out the page cache, which the kernel gives back on demand.
        usedBytes: memory?.active ?? memory?.used ?? 0,
        processRssBytes: process.memoryUsage.rss(),
      },
      diskFreeBytes: diskFree,
      ...(gpu ? { gpu } : {}),
      uptimeSeconds: Math.round(si.time().uptime),
      processUptimeSeconds: Math.round(process.uptime()),
    };
  }

  private async readJetsonGpu(board: string): Promise<GpuReading | null> {
    this.gpuFiles ??= findJetsonGpuFiles(this.root);
    const files = await this.gpuFiles;
    const [perMille, milliDegrees] = await Promise.all([readNumber(files.load), readNumber(files.temperature)]);
    if (perMille !== null || milliDegrees !== null) {
      return {
        ...(perMille !== null ? { loadPercent: round(Math.max(0, perMille) / 10, 1) } : {}),
        ...(milliDegrees !== null ? { temperatureC: round(milliDegrees / 1000, 1) } : {}),
        model: board,
      };
    }
    const graphics = await si.graphics().catch(() => null);
    const controller = graphics?.controllers.find((c) => c.utilizationGpu !== undefined || c.temperatureGpu !== undefined);
    if (!controller) return null;
    return {
      ...(controller.utilizationGpu !== undefined ? { loadPercent: controller.utilizationGpu } : {}),
      ...(controller.temperatureGpu !== undefined ? { temperatureC: controller.temperatureGpu } : {}),
      model: controller.model,
    };
  }
}

/** The first GPU load file that exists, and the thermal zone whose type names the GPU. */
async function findJetsonGpuFiles(root: string): Promise<JetsonGpuFiles> {
  const load = JETSON_GPU_LOAD_FILES.map((f) => join(root, f)).find((f) => existsSync(f)) ?? null;
  let temperature: string | null = null;
  const thermal = join(root, 'sys/class/thermal');
  const zones = await readdir(thermal).catch(() => [] as string[]);
  for (const zone of zones.filter((z) => /^thermal_zone\d+$/.test(z)).sort((a, b) => Number(a.slice(12)) - Number(b.slice(12)))) {
    const type = await readFile(join(thermal, zone, 'type'), 'utf8').catch(() => '');
    if (JETSON_GPU_THERMAL_TYPES.has(type.trim().toLowerCase())) {
      temperature = join(thermal, zone, 'temp');
      break;
    }
  }
  return { load, temperature };
}

async function readNumber(path: string | null): Promise<number | null> {
  if (path === null) return null;
  try {
    const value = Number.parseInt(await readFile(path, 'utf8'), 10);
    return Number.isFinite(value) ? value : null;
  } catch {
    return null;
  }
}

async function diskFreeBytes(dir: string): Promise<number> {
  try {
    const fs = await statfs(dir);
    return fs.bavail * fs.bsize;
  } catch {
    return 0;
  }
}

/** The board's name if this is an NVIDIA Jetson (L4T), else null. */
function jetsonBoard(root: string): string | null {
  let model = '';
  try {
    // Device-tree strings end in a NUL.
    model = readFileSync(join(root, 'proc/device-tree/model'), 'utf8').replace(/\0+$/, '').trim();
  } catch {
    // No device tree: not an ARM board, or not exposed.
  }
  if (model.includes('Jetson')) return model;
  return existsSync(join(root, 'etc/nv_tegra_release')) ? model || 'NVIDIA Jetson' : null;
}

const round = (x: number, digits: number) => Number(x.toFixed(digits));
