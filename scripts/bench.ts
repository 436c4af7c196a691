/**
 * `npm run bench [-- --json] [-- --only a,b]`: speed figures of the whole pipeline on this
 * machine, as real-time factors per core (seconds of audio per CPU second), per-query
 * times, and the daemon's own figures measured on `ser-edge run` itself (latency from the
 * spoken end of a window to the central subscriber, channels one daemon keeps up with,
 * memory), and how long the program, bundled and not, takes to start. Uses ../shared/data
 * for real speech when it is there.
 *
 * Each figure is measured on its own: one that fails gets null and a `{figure}_error`, and
 * the rest still run. The exit code is 1 when a figure could not be measured, 0 otherwise;
 * a figure that misses its target is listed in `below_target` and does not change it.
 */
import { Command } from 'commander';
import { exitTwoOnUsageError } from '../src/commands/usage-errors.js';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { defaultModelDir, packageRoot } from '../src/config/package-paths.js';
import { EmbeddedBroker } from '../src/daemon/embedded-broker.js';
import { loadClassifier } from '../src/model/load-classifier.js';
import { FEATURE_PRESETS } from '../src/training/feature-presets.js';
import { benchFeatures, loadRealSpeech } from './bench/bench-features.js';
import { benchClassifyPath, benchSignal } from './bench/bench-classify.js';
import { benchVoicingCost } from './bench/bench-vad.js';
import { BENCH_GRU, BENCH_MLP, benchBundleModel, benchFusedGru, benchKnnKernel, benchPooledMlp, benchTfjsGru } from './bench/bench-model.js';
import { benchPublishLatency } from './bench/bench-latency.js';
import { CHANNELS_PER_SOURCE, probeChannels, searchChannels, writeRecordings } from './bench/bench-capacity.js';
import { benchColdStart, BUNDLED_PROGRAM, bundleBuild, bundleSize, UNBUNDLED_PROGRAM, writeColdStartRecording } from './bench/bench-cold-start.js';
import { lazy, runFigures, type Figure } from './bench/figures.js';
import { loadSpeechClips } from './bench/replay-speech.js';
import { MOSQUITTO_MISSING, startMosquitto } from '../test/helpers/mosquitto.js';

const options = exitTwoOnUsageError(new Command())
  .name('bench')
  .description('Speed and memory figures of the whole pipeline on this machine, each held to its target (README, Benchmarks). Takes 4-5 minutes.')
  .option('--json', 'print one JSON object on stdout instead of the table', false)
  .option('--only <figures>', 'measure only these figures (comma-separated; an unknown name lists the figures there are)')
  .parse()
  .opts<{ json: boolean; only?: string }>();
const json = options.json;
const only = options.only?.split(',').filter(Boolean);
const realDir = join(packageRoot(), '..', 'shared', 'data', 'cremad');
const haveReal = existsSync(realDir);
const log = (line: string) => {
  if (!json) process.stderr.write(line + '\n');
};

/** What each headline figure is held to (README, Benchmarks). */
const TARGETS: Record<string, ['>=' | '<=', number]> = {
  features_rtf: ['>=', 1000],
  vad_voicing_cost_percent: ['<=', 5],
  classify_rtf: ['>=', 500],
  knn_query_ms: ['<=', 0.3],
  gru_ms_per_audio_s: ['<=', 0.5],
  mlp_ms_per_audio_s: ['<=', 0.5],
  default_model_ms_per_audio_s: ['<=', 0.5],
  channels_per_core: ['>=', 400],
  publish_latency_p99_ms: ['<=', 150],
  rss_mb_8_channels: ['<=', 150],
  // Issue 12: a question about usage answers within half a second, bundled or not.
  help_ms_bundle: ['<=', 500],
  help_ms_unbundled: ['<=', 500],
};

const classifier = lazy(() => loadClassifier(defaultModelDir()));
const sampleRate = async () => (await classifier()).manifest.features.sampleRate;
const clips = lazy(async () => loadSpeechClips(haveReal ? realDir : undefined, await sampleRate()));
/** The central broker the daemons publish to: mosquitto, or the embedded aedes broker in this process without it. */
const broker = lazy(async () => {
  if (!MOSQUITTO_MISSING) {
    const mosquitto = await startMosquitto();
    return { url: mosquitto.url, name: 'mosquitto', stop: () => mosquitto.stop() };
  }
  const embedded = new EmbeddedBroker({ port: 0 });
  await embedded.start();
  return { url: embedded.url, name: 'aedes (embedded, in the bench process: mosquitto is not installed)', stop: () => embedded.stop() };
});
const r3 = (x: number) => Number(x.toFixed(3));
/** Cold starts per program, after one that is not counted. */
const COLD_STARTS = 5;

/** Spawn → first classified window and spawn → `--help`'s exit of `program`, in a temporary folder removed afterwards. */
async function coldStart(program: string) {
  const dir = mkdtempSync(join(tmpdir(), 'ser-edge-bench-cold-start-'));
  try {
    const recording = writeColdStartRecording(dir, await sampleRate());
    return await benchColdStart({ program, dir, recording, brokerUrl: (await broker()).url, runs: COLD_STARTS });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function latencyFigure(channels: number, seconds: number, extra: (r: Awaited<ReturnType<typeof benchPublishLatency>>) => Record<string, unknown> = () => ({})): Figure {
  const keys = [`publish_latency_p50_ms_${channels}ch`, `publish_latency_p99_ms_${channels}ch`, `publish_latency_${channels}ch`];
  return {
    name: `publish_latency_${channels}ch`,
    keys: channels === 32 ? [...keys, 'publish_latency_p99_ms'] : channels === 8 ? [...keys, 'rss_mb_8_channels', 'cpu_percent_8_channels'] : keys,
    describe: `spoken window end → subscriber through \`ser-edge run\`, ${channels} channel${channels === 1 ? '' : 's'} on stdin, ${seconds} s of speech`,
    run: async () => {
      const r = await benchPublishLatency({ classifier: await classifier(), clips: await clips(), channels, brokerUrl: (await broker()).url, seconds });
      if (r.replica.matched < r.replica.received) throw new Error(`the daemon's events differ from the replica's (${r.replica.mismatches.join('; ')}): the window each came from is unknown`);
      if (r.spoken_to_subscriber_ms.n === 0) throw new Error(`no urgency event after the warm-up in ${seconds} s (${r.replica.expected} expected in all)`);
      return {
        [`publish_latency_p50_ms_${channels}ch`]: r.spoken_to_subscriber_ms.p50,
        [`publish_latency_p99_ms_${channels}ch`]: r.spoken_to_subscriber_ms.p99,
        [`publish_latency_${channels}ch`]: { ...r, broker: (await broker()).name },
        ...extra(r),
      };
    },
  };
}

const figures: Figure[] = [
  {
    name: 'features',
    keys: ['features_rtf', 'features_full_rtf', 'features_rtf_real', 'features_us_per_frame', 'meyda_extract_rtf', 'features_set'],
    describe: `feature extraction, the shipped model's set and the full set (60 s generated speech${haveReal ? ', 60 s of CREMA-D' : ''})`,
    run: async () => {
      const config = (await classifier()).manifest.features;
      const shipped = await benchFeatures({ config, seconds: 60, ...(haveReal ? { realSpeechDir: realDir } : {}) });
      const full = await benchFeatures({ config: FEATURE_PRESETS.full, seconds: 60 });
      return {
        features_rtf: shipped.features_rtf,
        features_full_rtf: full.features_rtf,
        features_rtf_real: shipped.features_rtf_real ?? null,
        features_us_per_frame: shipped.us_per_frame,
        meyda_extract_rtf: full.meyda_extract_rtf,
        features_set: `${config.features.join(',')} (${shipped.frame_vector_size} per frame; full set ${full.frame_vector_size})`,
      };
    },
  },
  {
    name: 'knn',
    keys: ['knn_query_ms', 'knn_query_ms_js', 'knn_reference_dim'],
    describe: 'knn query: 10,000 int8 references, wasm SIMD and JS kernels',
    run: async () => {
      const dim = (await classifier()).manifest.knn?.dim ?? 300;
      return { knn_query_ms: r3(benchKnnKernel('wasm-simd', 10_000, dim, 10, 'l1')), knn_query_ms_js: r3(benchKnnKernel('js', 10_000, dim, 10, 'l1')), knn_reference_dim: dim };
    },
  },
  {
    name: 'gru',
    keys: ['gru_ms_per_audio_s', 'gru_js_ms_per_audio_s', 'gru_bench_model'],
    describe: `gru inference (${BENCH_GRU.units.length}×GRU${BENCH_GRU.units[0]}, ${BENCH_GRU.steps} steps): fused kernel, wasm SIMD and JS`,
    run: async () => ({
      gru_ms_per_audio_s: r3(benchFusedGru('wasm-simd')),
      gru_js_ms_per_audio_s: r3(benchFusedGru('js')),
      gru_bench_model: `${BENCH_GRU.units.length}×GRU${BENCH_GRU.units[0]} over ${BENCH_GRU.steps} steps × ${BENCH_GRU.inputDim}`,
    }),
  },
  {
    name: 'mlp',
    keys: ['mlp_ms_per_audio_s', 'mlp_bench_model'],
    describe: `pooled MLP bag (${BENCH_MLP.members} members, ${BENCH_MLP.callBaseline}-window caller baseline)`,
    run: async () => ({
      mlp_ms_per_audio_s: r3(benchPooledMlp()),
      mlp_bench_model: `${BENCH_MLP.members} × MLP ${BENCH_MLP.hidden.join('×')} over functionals of ${BENCH_MLP.frames} frames × prosody, and their copy relative to a ${BENCH_MLP.callBaseline}-window caller baseline`,
    }),
  },
  {
    name: 'default_model',
    keys: ['default_model_ms_per_audio_s', 'classify_model'],
    describe: 'the shipped model from a window’s frames',
    run: async () => {
      const c = await classifier();
      return { default_model_ms_per_audio_s: r3(benchBundleModel(c)), classify_model: `${c.manifest.name}@${c.manifest.version} (${c.backend})` };
    },
  },
  {
    name: 'classify',
    keys: ['classify_rtf', 'classify_rtf_real'],
    describe: 'classify path (VAD → features → model → urgency) with models/default',
    run: async () => {
      const c = await classifier();
      const rate = await sampleRate();
      return {
        classify_rtf: Math.round(benchClassifyPath(c, benchSignal(60, rate)).rtf),
        classify_rtf_real: haveReal ? Math.round(benchClassifyPath(c, await loadRealSpeech(realDir, 60, rate)).rtf) : null,
      };
    },
  },
  {
    name: 'vad_voicing',
    keys: ['vad_voicing_cost_percent', 'vad_voicing_cost_percent_full', 'vad_voicing'],
    describe: 'what the VAD’s voicing check costs the feature stream, shipped set and full set (60 s of synthetic calls)',
    run: async () => {
      const rate = await sampleRate();
      const signal = benchSignal(60, rate);
      const shipped = benchVoicingCost(signal, (await classifier()).manifest.features);
      const full = benchVoicingCost(signal, FEATURE_PRESETS.full);
      const real = haveReal ? benchVoicingCost(await loadRealSpeech(realDir, 60, rate), (await classifier()).manifest.features) : null;
      return {
        vad_voicing_cost_percent: shipped.cost_percent,
        vad_voicing_cost_percent_full: full.cost_percent,
        vad_voicing: { shipped, full, shipped_real_speech: real },
      };
    },
  },
  latencyFigure(1, 40),
  latencyFigure(8, 25, (r) => ({ rss_mb_8_channels: r.rss_mb, cpu_percent_8_channels: r.cpu_process_percent })),
  latencyFigure(32, 25, (r) => ({ publish_latency_p99_ms: r.spoken_to_subscriber_ms.p99 })),
  {
    name: 'channels_per_core',
    keys: ['channels_per_core', 'channels_per_core_cpu_percent', 'channels_per_core_cpu_estimate', 'channels_per_core_probes'],
    describe: `real-time channels one \`ser-edge run\` keeps up with (microphone sources of ${CHANNELS_PER_SOURCE}), doubling then bisection`,
    run: async () => {
      const recordings = writeRecordings(mkdtempSync(join(tmpdir(), 'ser-edge-bench-recordings-')), await clips(), await sampleRate());
      const url = (await broker()).url;
      const found = await searchChannels(
        async (channels) => {
          const probe = await probeChannels({ recordings, channels, brokerUrl: url });
          log(`  ${channels} channels: ${probe.why} (main thread ${probe.cpuMainThreadPercent ?? '?'}% of a core, ${probe.wallSeconds} s)`);
          return probe;
        },
        { start: 128, max: 2048, step: 16 },
      );
      if (found.channels === 0) throw new Error(`no channel count kept up: ${found.probes.map((p) => `${p.channels}: ${p.why}`).join('; ')}`);
      const cpu = found.probes.find((p) => p.channels === found.channels && p.keptUp)?.cpuMainThreadPercent ?? null;
      return {
        channels_per_core: found.channels,
        channels_per_core_cpu_percent: cpu,
        // What a core of its own would carry at the CPU per channel measured: an upper bound, for a busy machine.
        channels_per_core_cpu_estimate: cpu ? Math.round((found.channels * 100) / cpu) : null,
        channels_per_core_probes: found.probes,
      };
    },
  },
  {
    name: 'cold_start_unbundled',
    keys: ['cold_start_first_window_ms_unbundled', 'help_ms_unbundled', 'cold_start_unbundled'],
    describe: `bin/ser-edge.js: spawn → first classified window (a file replayed as fast as it decodes) and spawn → \`--help\` exits, median of ${COLD_STARTS}`,
    run: async () => {
      const r = await coldStart(UNBUNDLED_PROGRAM);
      return { cold_start_first_window_ms_unbundled: r.first_window_ms, help_ms_unbundled: r.help_ms, cold_start_unbundled: { parts: r.parts, runs: r.runs, help_runs_ms: r.help_runs_ms } };
    },
  },
  {
    name: 'cold_start_bundle',
    keys: ['bundle_bytes', 'bundle_folder_bytes', 'cold_start_first_window_ms_bundle', 'help_ms_bundle', 'cold_start_bundle'],
    describe: `dist/bundle/ser-edge.mjs (\`npm run bundle\`): its size, and the same cold starts, median of ${COLD_STARTS}`,
    run: async () => {
      const build = bundleBuild();
      const size = bundleSize();
      const r = await coldStart(BUNDLED_PROGRAM);
      return {
        bundle_bytes: size.programBytes,
        bundle_folder_bytes: size.folderBytes,
        cold_start_first_window_ms_bundle: r.first_window_ms,
        help_ms_bundle: r.help_ms,
        cold_start_bundle: { ...build, files: size.files, parts: r.parts, runs: r.runs, help_runs_ms: r.help_runs_ms },
      };
    },
  },
  // Last: TensorFlow.js is imported only here, so its load does not touch the figures above.
  {
    name: 'gru_tfjs',
    keys: ['gru_tfjs_ms_per_audio_s', 'gru_tfjs_backend'],
    describe: 'gru inference on TensorFlow.js (wasm backend)',
    run: async () => {
      const t = await benchTfjsGru(['wasm', 'cpu']);
      return { gru_tfjs_ms_per_audio_s: Number(t.ms.toFixed(2)), gru_tfjs_backend: t.backend };
    },
  },
];

const startedAt = performance.now();
const loadBefore = loadavg();
const run = await runFigures(figures, { ...(only ? { only } : {}), log });
await broker
  .ifMade()
  ?.then((b) => b.stop())
  .catch(() => {});
(await classifier.ifMade()?.catch(() => undefined))?.dispose();

const belowTarget = Object.entries(TARGETS)
  .filter(([key, [op, bound]]) => typeof run.result[key] === 'number' && !(op === '>=' ? (run.result[key] as number) >= bound : (run.result[key] as number) <= bound))
  .map(([key, [op, bound]]) => `${key} ${run.result[key]} (target ${op} ${bound})`);
const result = {
  machine: {
    cpus: cpus()[0]?.model ?? 'unknown',
    cores: cpus().length,
    node: process.version,
    // Other work on the machine takes cores from the daemon: read the daemon figures with it.
    load_average_at_start: loadBefore.map((x) => Number(x.toFixed(2))),
    load_average_at_end: loadavg().map((x) => Number(x.toFixed(2))),
  },
  ...run.result,
  below_target: belowTarget,
  bench_seconds: Math.round((performance.now() - startedAt) / 1000),
  ...(haveReal ? {} : { note: '../shared/data absent: real-speech figures skipped, the daemon figures replay synthetic voices' }),
};

if (json) {
  process.stdout.write(JSON.stringify(result) + '\n');
} else {
  for (const [key, value] of Object.entries(result)) process.stdout.write(`${key.padEnd(30)} ${typeof value === 'object' && value !== null ? JSON.stringify(value) : value}\n`);
}
process.exitCode = run.failed.length > 0 ? 1 : 0;
