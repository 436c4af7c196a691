import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { seededRandom } from '../src/datasets/seeded-random.js';
import { Int8NeighbourSearch, type DistanceMetric } from '../src/model/int8-neighbour-search.js';
import { assembleWat, generatedModulePath, generatedModuleText, kernelSourceDir, kernelSources } from '../scripts/build-wasm.js';

function randomInt8(length: number, seed: number): Int8Array {
  const random = seededRandom(seed);
  // The full int8 range, -128 included, so the kernels' overflow bounds are exercised.
  return Int8Array.from({ length }, () => Math.floor(random() * 256) - 128);
}

for (const metric of ['l1', 'l2'] as DistanceMetric[]) {
  for (const dim of [1, 15, 17, 300]) {
    test(`the wasm-simd and js kernels find identical neighbours and distances (${metric}, dim ${dim})`, () => {
      const refs = randomInt8(997 * dim, dim);
      const simd = new Int8NeighbourSearch(refs, dim, 12, { kernel: 'wasm-simd' });
      const js = new Int8NeighbourSearch(refs, dim, 12, { kernel: 'js' });
      for (let q = 0; q < 5; q++) {
        const query = randomInt8(dim, 100 + q);
        const a = simd.search(query, 12, metric);
        const ia = Array.from(a.indices.subarray(0, a.found));
        const da = Array.from(a.distances.subarray(0, a.found));
        const b = js.search(query, 12, metric);
        assert.deepEqual(ia, Array.from(b.indices.subarray(0, b.found)));
        assert.deepEqual(da, Array.from(b.distances.subarray(0, b.found)));
      }
    });
  }
}

test('the wasm-simd kernel accumulates L1 exactly past 128 chunks (2048 dimensions) of extreme values', () => {
  const dim = 4100;
  const refs = new Int8Array(2 * dim).fill(-128);
  refs.fill(127, dim);
  const query = new Int8Array(dim).fill(127);
  const r = new Int8NeighbourSearch(refs, dim, 2, { kernel: 'wasm-simd' }).search(query, 2, 'l1');
  assert.deepEqual(Array.from(r.distances.subarray(0, 2)), [0, 255 * dim]);
  assert.deepEqual(Array.from(r.indices.subarray(0, 2)), [1, 0]);
});

test('asking the wasm-simd kernel for more neighbours than references returns them all, nearest first', () => {
  const s = new Int8NeighbourSearch(Int8Array.from([5, 1, 3]), 1, 10, { kernel: 'wasm-simd' });
  const r = s.search(Int8Array.from([0]), 10, 'l2');
  assert.equal(r.found, 3);
  assert.deepEqual(Array.from(r.indices.subarray(0, 3)), [1, 2, 0]);
  assert.deepEqual(Array.from(r.distances.subarray(0, 3)), [1, 9, 25]);
});

test('equal distances keep the lower reference index first', () => {
  const s = new Int8NeighbourSearch(Int8Array.from([2, -2, 2, 0]), 1, 3, { kernel: 'wasm-simd' });
  const r = s.search(Int8Array.from([0]), 3, 'l1');
  assert.deepEqual(Array.from(r.indices.subarray(0, 3)), [3, 0, 1]);
});

test('the search uses the SIMD kernel by default where WebAssembly SIMD exists', () => {
  assert.equal(new Int8NeighbourSearch(new Int8Array(32), 16, 1).kernel, 'wasm-simd');
});

test('every committed kernel module is the assembly of its .wat source', async () => {
  const sources = await kernelSources();
  assert.ok(['model/kernels/int8-distance.wat', 'model/kernels/gru.wat', 'features/kernels/autocorrelation.wat'].every((k) => sources.includes(k)), sources.join(', '));
  for (const wat of sources) {
    const bytes = await assembleWat(wat, await readFile(join(kernelSourceDir(), wat), 'utf8'));
    assert.equal(await readFile(generatedModulePath(wat), 'utf8'), generatedModuleText(wat, bytes), `${wat}: run node dist/scripts/build-wasm.js`);
  }
});
