import { existsSync, readFileSync } from 'node:fs';
import { statfs } from 'node:fs/promises';
import si from 'systeminformation';
import type { TelemetryPayload } from '../mqtt/payload-schemas.js';

export type HealthReading = TelemetryPayload['health'];

/**
 * Reads the gateway's health through systeminformation. The GPU is asked only on a
 * Jetson (si.graphics() shells out to lspci-style tools, too slow to run every interval
 * on a box without one); disk space is read with statfs on the state directory, the one
 * filesystem whose filling up would stop the outbox.
 */
export class HealthProbe {
  private readonly stateDir: string;
  private readonly jetson: boolean;

  constructor(dependencies: { stateDir: string }) {
    this.stateDir = dependencies.stateDir;
    this.jetson = isJetson();
  }

  async read(): Promise<HealthReading> {
    const [load, temperature, memory, diskFree, gpu] = await Promise.all([
      si.currentLoad().catch(() => null),
      si.cpuTemperature().catch(() => null),
      si.mem().catch(() => null),
      diskFreeBytes(this.stateDir),
      this.jetson ? si.graphics().catch(() => null) : Promise.resolve(null),
    ]);
    const controller = gpu?.controllers.find((c) => c.utilizationGpu !== undefined || c.temperatureGpu !== undefined);
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
      ...(controller
        ? {
            gpu: {
              ...(controller.utilizationGpu !== undefined ? { loadPercent: controller.utilizationGpu } : {}),
              ...(controller.temperatureGpu !== undefined ? { temperatureC: controller.temperatureGpu } : {}),
              model: controller.model,
            },
          }
        : {}),
      uptimeSeconds: Math.round(si.time().uptime),
      processUptimeSeconds: Math.round(process.uptime()),
    };
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

function isJetson(): boolean {
  if (existsSync('/etc/nv_tegra_release')) return true;
  try {
    return readFileSync('/proc/device-tree/model', 'utf8').includes('Jetson');
  } catch {
    return false;
  }
}

const round = (x: number, digits: number) => Number(x.toFixed(digits));
