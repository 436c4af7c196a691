import { createHash } from 'node:crypto';
import { mkdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { WindowingConfig } from '../audio/speech-windower.js';
import type { FeatureConfig } from '../features/feature-config.js';

/**
 * Extracted windows on disk, so repeated experiments skip decoding and analysis. The key
 * hashes everything the windows depend on: the FeatureConfig, the windowing, the
 * augmentation (with its drawn parameters), the file's path, size and mtime, and
 * FEATURE_CACHE_VERSION for the code; delete the folder to reclaim the space.
 *
 * Layout of an entry: u32 window count, then per window u32 frames and frames × dim f32.
 */
/**
 * Part of every key. The key cannot see code, so bump this when a change to the decoders,
 * resampler, VAD, feature extractors or augmentations changes what they compute; the old
 * entries are then never read again.
 */
export const FEATURE_CACHE_VERSION = 1;

export class FeatureCache {
  private readonly configHash: string;

  constructor(
    readonly dir: string,
    features: FeatureConfig,
    windowing: WindowingConfig,
    readonly dim: number,
  ) {
    this.configHash = createHash('sha256').update(JSON.stringify({ features, windowing, format: FEATURE_CACHE_VERSION })).digest('hex').slice(0, 16);
  }

  async keyFor(path: string, variant: string): Promise<string> {
    const info = await stat(path);
    return createHash('sha256').update([this.configHash, path, info.size, info.mtimeMs, variant].join('\0')).digest('hex');
  }

  private fileFor(key: string): string {
    return join(this.dir, this.configHash, key.slice(0, 2), `${key}.bin`);
  }

  async get(key: string): Promise<Float32Array[] | null> {
    let data: Buffer;
    try {
      data = await readFile(this.fileFor(key));
    } catch {
      return null;
    }
    const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
    const count = view.getUint32(0, true);
    const windows: Float32Array[] = [];
    let at = 4;
    for (let w = 0; w < count; w++) {
      const frames = view.getUint32(at, true);
      at += 4;
      const n = frames * this.dim;
      if (at + n * 4 > data.byteLength) return null;
      const rows = new Float32Array(n);
      for (let i = 0; i < n; i++, at += 4) rows[i] = view.getFloat32(at, true);
      windows.push(rows);
    }
    return windows;
  }

  async put(key: string, windows: Float32Array[]): Promise<void> {
    const bytes = 4 + windows.reduce((n, w) => n + 4 + w.length * 4, 0);
    const buffer = Buffer.alloc(bytes);
    let at = buffer.writeUInt32LE(windows.length, 0);
    for (const w of windows) {
      at = buffer.writeUInt32LE(w.length / this.dim, at);
      for (let i = 0; i < w.length; i++) at = buffer.writeFloatLE(w[i]!, at);
    }
    const file = this.fileFor(key);
    await mkdir(join(file, '..'), { recursive: true });
    // Written aside and renamed, so a run interrupted mid-write leaves no torn entry.
    const tmp = `${file}.${process.pid}.tmp`;
    await writeFile(tmp, buffer);
    await rename(tmp, file);
  }
}
