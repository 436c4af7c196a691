import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Command, InvalidArgumentError, Option } from 'commander';
import { defaultModelDir, packageRoot } from './config/package-paths.js';
import type { RunCommandOptions } from './commands/run-command.js';
import { exitTwoOnUsageError } from './commands/usage-errors.js';
import type { WatchOptions } from './commands/watch-command.js';
import type { LogFormat } from './daemon/daemon-logger.js';
import { DATASET_FORMATS } from './datasets/scan-dataset.js';
import { FEATURE_PRESET_NAMES } from './training/feature-preset-names.js';

// Each command's module is imported in its action, never up here: `--help` (and a usage
// error) then loads commander and these few option lists only, not the model, MQTT, the
// daemon or zod, and answers at once. test/cli-startup.test.ts holds it to that.

/** daemon-logger's LOG_FORMATS, repeated here because importing it would load pino for --help. */
const LOG_FORMATS = ['file', 'json', 'pretty'] as const satisfies readonly LogFormat[];

const version = (JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as { version: string }).version;

function positiveSeconds(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError('expected a positive number of seconds');
  return n;
}

/** An integer option of at least `min` (and at most `max`), refused by commander with its name when not. */
function integerAtLeast(min: number, max = Infinity): (value: string) => number {
  return (value: string) => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min || n > max) throw new InvalidArgumentError(`expected a whole number of at least ${min}${max < Infinity ? ` and at most ${max}` : ''}`);
    return n;
  };
}

function unitList(value: string): string {
  if (!/^\d+(,\d+)*$/.test(value.trim()) || value.split(',').some((u) => Number(u) < 1)) throw new InvalidArgumentError('expected positive unit counts separated by commas, e.g. 32,32');
  return value;
}

/** The broker, TLS and credential options of every command that connects as an operator (watch, model publish…). */
function brokerOptions(command: Command): Command {
  return command
    .requiredOption('-b, --broker <url>', 'broker url, e.g. mqtt://broker:1883 or mqtts://broker:8883')
    .option('--ca <file>', 'CA certificate (PEM) to trust for an mqtts:// broker')
    .option('--cert <file>', 'client certificate (PEM), with --key, for a broker that requires one')
    .option('--key <file>', 'private key (PEM) of --cert')
    .option('--username-file <file>', 'file holding the broker username (never printed)')
    .option('--password-file <file>', 'file holding the broker password (never printed)');
}

const program = exitTwoOnUsageError(new Command())
  .name('ser-edge')
  .description('On-device speech-emotion recognition for call-centre headset gateways: urgency flags over MQTT.')
  .version(version)
  .showHelpAfterError('(run with --help for usage)');

program
  .command('classify')
  .description('Classify recorded WAV, FLAC or Ogg Opus files: emotion and urgency per speech window and per file.')
  .argument('<files...>', 'WAV, FLAC or Ogg Opus files (any rate, mono or multi-channel: channels are averaged)')
  .option('-m, --model <dir>', 'model bundle directory', defaultModelDir())
  .option('--json', 'print one JSON object per file (file, emotion, probabilities, urgency, windows)', false)
  .addOption(new Option('--window <seconds>', 'analysis window length in seconds of speech').default(3).argParser(positiveSeconds))
  .addOption(new Option('--hop <seconds>', 'seconds of new speech between windows').default(1).argParser(positiveSeconds))
  .action(async (files: string[], opts: { model: string; json: boolean; window: number; hop: number }) => {
    const { runClassify } = await import('./commands/classify-command.js');
    process.exitCode = await runClassify(files, opts);
  });

program
  .command('eval')
  .description('Measure a model bundle on labelled recordings through the real classify path: accuracy, macro-F1, per class, confusion, urgent recall/precision, per gender.')
  .requiredOption('--data <dirs...>', 'corpus folders (CREMA-D, RAVDESS, TESS, SAVEE, EmoDB names) or CSV files path,label,speaker[,gender]')
  .option('-m, --model <dir>', 'model bundle directory', defaultModelDir())
  .addOption(new Option('--format <name>', 'dataset naming convention').choices(DATASET_FORMATS).default('auto'))
  .option('--json', 'print one JSON object (accuracy, macro_f1, per_class, confusion, urgent, n, per_gender…)', false)
  .option('--report <dir>', 'write report.md, confusion.svg and metrics.json here')
  .addOption(new Option('--channel <kind>', 'evaluate the recordings as they are, or through a simulated telephone line').choices(['clean', 'telephone']).default('clean'))
  .option('--urgent <labels>', 'emotions that count as urgent', 'angry,sad')
  .option('--urgent-threshold <p>', 'urgent when P(urgent labels) ≥ p; "model": the bundle\'s validation-tuned threshold; "top": when the top emotion is urgent', 'model')
  .option('--fold <i/k>', 'evaluate only fold i of k (the clips `train --holdout i/k` left out)')
  .option('--seed <n>', 'seed of the fold split and of the --call-warmup clips', (v) => Number.parseInt(v, 10), 1)
  .addOption(new Option('--split <kind>', 'folds by speaker, or by file (the seed study protocol, inflated)').choices(['speaker', 'random']).default('speaker'))
  .option('--shared-labels', 'keep only clips whose label the model has (otherwise they count as errors)', false)
  .option('--call-warmup <clips>', "for a model with a caller baseline: before each clip, this many other clips of its speaker are heard in the same call (0: every clip opens a call)", integerAtLeast(0, 20), 3)
  .action(async (opts) => {
    const { runEval } = await import('./commands/eval-command.js');
    process.exitCode = await runEval(opts);
  });

program
  .command('train')
  .description('Train a model bundle (KNN, GRU or pooled MLP) from labelled recordings, choosing it on speaker-disjoint validation.')
  .requiredOption('--data <dirs...>', 'corpus folders or CSV files path,label,speaker[,gender]')
  .requiredOption('--out <dir>', 'bundle directory to write')
  .addOption(new Option('--kind <kind>', 'model').choices(['knn', 'gru', 'mlp']).default('knn'))
  .addOption(new Option('--format <name>', 'dataset naming convention').choices(DATASET_FORMATS).default('auto'))
  .addOption(new Option('--features <preset>', 'feature configuration (the bundle carries it)').choices(FEATURE_PRESET_NAMES).default('prosody'))
  .option('--augment <list>', 'augmented copies per training clip: noise, shift, speed, telephone (comma-separated) or none', 'noise,telephone')
  .option('--holdout <i/k>', 'leave speaker fold i of k out entirely (then `eval --fold i/k`)')
  .addOption(new Option('--split <kind>', 'how --holdout folds are made: by speaker, or by file (seed protocol only)').choices(['speaker', 'random']).default('speaker'))
  .option('--seed <n>', 'seed of splits, shuffles and initial weights', (v) => Number.parseInt(v, 10), 1)
  .option('--validation-folds <k>', 'one speaker fold of k is the validation set', integerAtLeast(2), 5)
  .option('--cache <dir>', 'feature cache directory', 'var/cache/features')
  .option('--name <name>', 'model name', 'ser-model')
  .option('--model-version <v>', 'model version', '0.1.0')
  .option('--urgent <labels>', 'emotions that count as urgent (threshold tuning)', 'angry,sad')
  .option('--max-bytes <n>', 'bundle weight budget in bytes (64 KiB of it is kept for the manifest)', integerAtLeast(128 * 1024), 1_000_000)
  .option('--epochs <n>', 'GRU, MLP: most epochs (early stopping, patience 5 for GRU, 8 for MLP); default 25 for GRU, 80 for MLP', integerAtLeast(1))
  .option('--units <list>', 'GRU: units per layer', unitList, '32,32')
  .option('--batch-size <n>', 'GRU, MLP: batch size', integerAtLeast(1), 64)
  .option('--hidden <list>', 'MLP: hidden ReLU units per layer', unitList, '64')
  .option('--members <n>', 'MLP: networks in the bag, each from its own seed, probabilities averaged', integerAtLeast(1, 16), 5)
  .option('--call-baseline <windows>', "MLP: also see each window relative to the caller's first n speech windows of the call (0: off)", integerAtLeast(0, 20), 0)
  .option('--refit', 'GRU: after early stopping, retrain on every speaker for the best epoch count', false)
  .option('--mask <steps,dims>', 'GRU: per epoch, mask a random span of up to this many steps and band of features in each training sequence, or none', 'none')
  .option('--no-progress', 'no progress bars')
  .action(async (opts) => {
    const { runTrain } = await import('./commands/train-command.js');
    process.exitCode = await runTrain(opts);
  });

program
  .command('ensemble')
  .description('Combine trained GRU and MLP bundles of the same features and labels into one bundle whose probabilities are averaged.')
  .requiredOption('--members <dirs...>', 'member bundle directories (2 to 4; gru or mlp)')
  .requiredOption('--out <dir>', 'bundle directory to write')
  .option('--weights <list>', 'each member\'s share, comma-separated (default: equal)')
  .option('--name <name>', 'model name', 'ser-ensemble')
  .option('--model-version <v>', 'model version', '0.1.0')
  .action(async (opts) => {
    // Imported here: composing runs TensorFlow.js for the reference outputs, which no other command should pay to load.
    const { runEnsemble } = await import('./commands/ensemble-command.js');
    process.exitCode = await runEnsemble(opts);
  });

program
  .command('run')
  .description('Run the gateway daemon: capture the configured headset channels, classify, publish urgency flags over MQTT. Without --config: one demo channel and an embedded broker.')
  .option('-c, --config <file>', 'site config (JSON, may `extends` a firmware-config/ profile); see schemas/config.schema.json')
  .option('--print-flags', 'print a human line per flag event on stdout (on by default without --config)')
  .addOption(new Option('--log <format>', 'where the log goes: "json" lines on stderr (the default with --config, or off a terminal), a "file" ({stateDir}/ser-edge.log, warnings also shown; the demo\'s default on a terminal), or "pretty" lines on stderr').choices(LOG_FORMATS))
  .action(async (opts: RunCommandOptions) => {
    const { runDaemon } = await import('./commands/run-command.js');
    process.exitCode = await runDaemon(opts, version);
  });

brokerOptions(program.command('watch'))
  .description('Live table of gateways, channels and urgency for central operators (or --json lines).')
  .option('-s, --site <site>', 'only this site (default: all sites)')
  .option('-g, --group <group>', 'MQTT 5 shared-subscription group: consumers in one group split the urgency events')
  .option('--json', 'print one JSON line per received message instead of the table', false)
  .action(async (opts: WatchOptions) => {
    const { runWatch } = await import('./commands/watch-command.js');
    process.exitCode = await runWatch(opts);
  });

program
  .command('devices')
  .description("List the capture devices (ALSA) with the string for a profile's `device`; with --listen, a live level meter per channel and which channel carries the caller.")
  .option('--listen <device>', 'listen to an ALSA device (e.g. plughw:CARD=Headset,DEV=0), file:PATH (WAV, FLAC or Ogg Opus) or - (raw s16le PCM on stdin)')
  .addOption(new Option('--seconds <n>', 'how long to listen (default: 15 s for a device; a file or stdin to its end)').argParser(positiveSeconds))
  .addOption(new Option('--rate <hz>', 'stdin: the PCM\'s sample rate (required); a device: the rate to capture at').argParser(integerAtLeast(1000, 384000)))
  .addOption(new Option('--channels <n>', 'stdin: interleaved channels (default 1); a device: channels to open (default: all it has)').argParser(integerAtLeast(1, 32)))
  .option('--realtime', 'file: replay at wall-clock pace, as a device would deliver it (default: as fast as it decodes)')
  .option('--json', 'print one JSON object (the devices, or the listening summary and verdict)', false)
  .action(async (opts: { listen?: string; seconds?: number; rate?: number; channels?: number; realtime?: boolean; json: boolean }) => {
    // Loaded here, not at the top: --help must not pay for the audio and feature modules.
    const { runDevices } = await import('./commands/devices-command.js');
    process.exitCode = await runDevices(opts);
  });

program
  .command('doctor')
  .description("Check everything a gateway needs (Node, recorders, capture devices, model, broker, state directory, disk, clock, channel capacity); a fix for each failure, exit 1 on any.")
  .option('-c, --config <file>', 'site config to check (default: /etc/ser-edge/config.json when it exists, else the built-in demo default)')
  .addOption(new Option('--timeout <seconds>', 'how long the broker connection may take').default(5).argParser(positiveSeconds))
  .addOption(new Option('--measure-seconds <seconds>', 'CPU seconds spent measuring how many channels this machine carries').default(2).argParser(positiveSeconds))
  .option('--json', 'print one JSON object (ok, checks with status, detail and fix, summary)', false)
  .action(async (opts: { config?: string; timeout: number; measureSeconds: number; json: boolean }) => {
    // Loaded here: the checks pull in the model, MQTT and audio modules, which --help must not wait for.
    const { runDoctor } = await import('./commands/doctor-command.js');
    process.exitCode = await runDoctor(opts, version);
  });

const model = program
  .command('model')
  .description(
    "Model bundles for field techs: signing keys, signatures and packed bundles (local); publish to gateways over MQTT (with shadow trial and canaries), roll back, promote or discard a shadow model, and show every gateway's models.",
  );

// ---- model: the field tech's local tools (keygen, sign, verify, pack), run where the signing key is kept
model
  .command('keygen')
  .description('Write a new ed25519 signing key pair: DIR/model-signing.key (private, 0600; keep it off the gateways) and DIR/model-signing.pub (for model.trustedKeys).')
  .requiredOption('--out <dir>', 'directory to write the two key files to (created; existing keys are never overwritten)')
  .action(async (opts: { out: string }) => {
    const { runModelKeygen } = await import('./commands/model-command.js');
    process.exitCode = await runModelKeygen(opts);
  });

model
  .command('sign')
  .description('Sign a model bundle (its manifest, which holds every file\'s sha256) after checking that it loads and passes its self-test; writes signature.json into it.')
  .argument('<bundle-dir>', 'model bundle directory')
  .requiredOption('--key <file>', 'private signing key (model-signing.key from `model keygen`)')
  .action(async (dir: string, opts: { key: string }) => {
    const { runModelSign } = await import('./commands/model-command.js');
    process.exitCode = await runModelSign(dir, opts);
  });

model
  .command('verify')
  .description('Check that a bundle is signed by one of the given public keys and that it loads: exit 0 with its name, version and key id, else 1 with the reason.')
  .argument('<bundle-dir>', 'model bundle directory')
  .requiredOption('--pub <files...>', 'trusted public keys (.pub files), as in model.trustedKeys')
  .action(async (dir: string, opts: { pub: string[] }) => {
    const { runModelVerify } = await import('./commands/model-command.js');
    process.exitCode = await runModelVerify(dir, opts);
  });

model
  .command('pack')
  .description('Pack a signed bundle into one file (a tar) for cmd/model.install; prints its size and sha256, which an install by url needs.')
  .argument('<bundle-dir>', 'model bundle directory')
  .requiredOption('--out <file>', 'the packed bundle to write')
  .option('--allow-unsigned', 'pack a bundle that has no signature (gateways refuse to install it remotely)', false)
  .action(async (dir: string, opts: { out: string; allowUnsigned: boolean }) => {
    const { runModelPack } = await import('./commands/model-command.js');
    process.exitCode = await runModelPack(dir, opts);
  });

// ---- model: the field tech's fleet commands over MQTT (publish, rollback, promote, discard, status)

/** `--gateway G`, repeated or comma-separated, into one list. */
const gatewayList = (value: string, previous: string[] = []): string[] => [...previous, ...value.split(',').map((g) => g.trim()).filter((g) => g.length > 0)];

/** The options of every fleet subcommand that targets gateways; `timeout` is its default in seconds. */
function fleetTargetOptions(command: Command, timeout: number): Command {
  return brokerOptions(command)
    .requiredOption('-s, --site <site>', 'the site whose gateways to command')
    .option('-g, --gateway <id>', 'a gateway to command (repeat it, or id1,id2)', gatewayList)
    .option('--all', "every gateway of the site, as their retained status names them (offline ones are listed, not sent to)")
    .addOption(new Option('--timeout <seconds>', "how long to wait for each gateway's reply, from when the broker took the command").default(timeout).argParser(positiveSeconds))
    .option('--json', 'print one JSON document (each gateway\'s result, reason, active model, message) instead of the table', false);
}

fleetTargetOptions(model.command('publish'), 120)
  .description('Install a signed bundle on gateways over MQTT (cmd/model.install), canaries first; a table of what each answered, exit 0 only when all succeeded.')
  .argument('<bundle>', 'a signed bundle directory, or the file `model pack` made of it')
  .addOption(new Option('--shadow <minutes>', 'stage it and run it beside the active model for this long, publishing nothing (then model promote or discard)').argParser((v) => {
    const n = Number(v);
    if (!Number.isFinite(n) || n <= 0 || n > 7 * 24 * 60) throw new InvalidArgumentError('expected minutes above 0, at most 10080 (a week)');
    return n;
  }))
  .option('--canary <n>', 'install on the first n gateways (as given, or by id with --all) first; the rest only if all of them succeeded', integerAtLeast(1))
  .option('--url <url>', 'the gateways download the packed bundle from this http(s) URL (upload the same file there) instead of receiving it inline (at most 8 MiB)')
  .option('--force', 'install even when the version is not newer than the active one (a deliberate downgrade)', false)
  .action(async (bundle: string, opts: import('./commands/model-fleet-command.js').PublishOptions) => {
    const { runModelPublish } = await import('./commands/model-fleet-command.js');
    process.exitCode = await runModelPublish(bundle, opts);
  });

for (const [verb, what] of [
  ['rollback', 'Return the gateways to their previous model (cmd/model.rollback).'],
  ['promote', 'Activate the model under shadow trial on the gateways (cmd/model.promote).'],
  ['discard', 'Drop the model under shadow trial on the gateways (cmd/model.discard).'],
] as const) {
  fleetTargetOptions(model.command(verb), 60)
    .description(`${what} A table of what each answered; exit 0 only when all succeeded.`)
    .action(async (opts: import('./commands/model-fleet-command.js').TargetedOptions) => {
      const { runModelCommand } = await import('./commands/model-fleet-command.js');
      process.exitCode = await runModelCommand(`model.${verb}`, opts);
    });
}

brokerOptions(model.command('status'))
  .description("Every gateway of a site: online or not, active, previous and staged model (with its shadow trial), last install, from their retained …/status and …/model.")
  .requiredOption('-s, --site <site>', 'the site to show')
  .addOption(new Option('--timeout <seconds>', 'how long to wait for the retained messages').default(10).argParser(positiveSeconds))
  .option('--json', 'print one JSON document (each gateway\'s status and model state as published)', false)
  .action(async (opts: import('./commands/model-fleet-command.js').FleetOptions) => {
    const { runModelStatus } = await import('./commands/model-fleet-command.js');
    process.exitCode = await runModelStatus(opts);
  });
// ---- end of the fleet commands

await program.parseAsync(process.argv);
