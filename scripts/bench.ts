/**
 * `npm run bench [-- --json]`: speed figures of the whole pipeline on this machine, as
 * real-time factors per core (seconds of audio per CPU second) and per-query times.
 * Uses ../shared/data for real speech when it is there.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { defaultModelDir, packageRoot } from '../src/config/package-paths.js';
import { loadClassifier } from '../src/model/load-classifier.js';
import { benchFeatures, loadRealSpeech } from './bench/bench-features.js';
import { benchClassifyPath, benchSignal } from './bench/bench-classify.js';
import { BENCH_GRU, BENCH_MLP, benchBundleModel, benchFusedGru, benchKnnKernel, benchPooledMlp, benchTfjsGru } from './bench/bench-model.js';
import { benchDaemon } from './bench/bench-daemon.js';
import { MOSQUITTO_MISSING, startMosquitto } from '../test/helpers/mosquitto.js';

const json = process.argv.includes('--json');
const realDir = join(packageRoot(), '..', 'shared', 'data', 'cremad');
const haveReal = existsSync(realDir);
const log = (line: string) => {
  if (!json) process.stderr.write(line + '\n');
};

log('features (60 s generated speech' + (haveReal ? ' and 60 s of CREMA-D' : '') + ')…');
const features = await benchFeatures({ seconds: 60, ...(haveReal ? { realSpeechDir: realDir } : {}) });

const classifier = await loadClassifier(defaultModelDir());
const dim = classifier.manifest.knn?.dim ?? 300;
log(`knn query: 10,000 int8 references × ${dim}, wasm SIMD and JS kernels…`);
const knnMs = benchKnnKernel('wasm-simd', 10_000, dim, 10, 'l1');
const knnJsMs = benchKnnKernel('js', 10_000, dim, 10, 'l1');
const gruShape = `${BENCH_GRU.units.length}×GRU${BENCH_GRU.units[0]} over ${BENCH_GRU.steps} steps × ${BENCH_GRU.inputDim}`;
log(`gru inference (${gruShape}): fused kernel, wasm SIMD and JS…`);
const gruMs = benchFusedGru('wasm-simd');
const gruJsMs = benchFusedGru('js');
const mlpShape = `${BENCH_MLP.members} × MLP ${BENCH_MLP.hidden.join('×')} over functionals of ${BENCH_MLP.frames} frames × prosody, and their copy relative to a ${BENCH_MLP.callBaseline}-window caller baseline`;
log(`pooled MLP (${mlpShape}): functionals and the bag…`);
const mlpMs = benchPooledMlp();
log(`shipped model (${classifier.manifest.name}@${classifier.manifest.version}, ${classifier.backend})…`);
const defaultModelMs = benchBundleModel(classifier);

log('classify path (VAD → features → model → urgency) with models/default…');
const sampleRate = classifier.manifest.features.sampleRate;
const synthetic = benchClassifyPath(classifier, benchSignal(60, sampleRate));
const real = haveReal ? benchClassifyPath(classifier, await loadRealSpeech(realDir, 60, sampleRate)) : null;

log('daemon: channels per core, window end → PUBACK latency (embedded broker' + (MOSQUITTO_MISSING ? '' : ', mosquitto') + '), RSS with 8 real-time channels (~15 s)…');
const mosquitto = MOSQUITTO_MISSING ? undefined : await startMosquitto();
const daemon = await benchDaemon(classifier, mosquitto ? { mosquittoUrl: mosquitto.url } : {});
await mosquitto?.stop();

// Last: TensorFlow.js is imported only here, so its load does not touch the figures above.
log('gru inference on TensorFlow.js (wasm backend)…');
const gruTfjs = await benchTfjsGru(['wasm', 'cpu']);

const result = {
  machine: { cpus: (await import('node:os')).cpus()[0]?.model ?? 'unknown', node: process.version },
  features_rtf: features.features_rtf,
  ...(features.features_rtf_real !== undefined ? { features_rtf_real: features.features_rtf_real } : {}),
  features_us_per_frame: features.us_per_frame,
  meyda_extract_rtf: features.meyda_extract_rtf,
  knn_query_ms: Number(knnMs.toFixed(3)),
  knn_query_ms_js: Number(knnJsMs.toFixed(3)),
  knn_reference_dim: dim,
  gru_ms_per_audio_s: Number(gruMs.toFixed(3)),
  gru_js_ms_per_audio_s: Number(gruJsMs.toFixed(3)),
  gru_tfjs_ms_per_audio_s: Number(gruTfjs.ms.toFixed(2)),
  gru_tfjs_backend: gruTfjs.backend,
  gru_bench_model: gruShape,
  mlp_ms_per_audio_s: Number(mlpMs.toFixed(3)),
  mlp_bench_model: mlpShape,
  default_model_ms_per_audio_s: Number(defaultModelMs.toFixed(3)),
  classify_rtf: Math.round(synthetic.rtf),
  ...(real ? { classify_rtf_real: Math.round(real.rtf) } : {}),
  ...daemon,
  classify_model: `${classifier.manifest.name}@${classifier.manifest.version} (${classifier.backend})`,
  ...(haveReal ? {} : { note: '../shared/data absent: real-speech figures skipped' }),
};

if (json) {
  process.stdout.write(JSON.stringify(result) + '\n');
} else {
  for (const [key, value] of Object.entries(result)) process.stdout.write(`${key.padEnd(24)} ${typeof value === 'object' ? JSON.stringify(value) : value}\n`);
}
classifier.dispose();
