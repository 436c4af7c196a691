import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Command, InvalidArgumentError, Option } from 'commander';
import { defaultModelDir, packageRoot } from './config/package-paths.js';
import { runClassify } from './commands/classify-command.js';

const version = (JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as { version: string }).version;

function positiveSeconds(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError('expected a positive number of seconds');
  return n;
}

const program = new Command()
  .name('ser-edge')
  .description('On-device speech-emotion recognition for call-centre headset gateways: urgency flags over MQTT.')
  .version(version)
  .showHelpAfterError('(run with --help for usage)');

program
  .command('classify')
  .description('Classify recorded WAV/FLAC files: emotion and urgency per speech window and per file.')
  .argument('<files...>', 'WAV or FLAC files (any rate, mono or multi-channel: channels are averaged)')
  .option('-m, --model <dir>', 'model bundle directory', defaultModelDir())
  .option('--json', 'print one JSON object per file (file, emotion, probabilities, urgency, windows)', false)
  .addOption(new Option('--window <seconds>', 'analysis window length in seconds of speech').default(3).argParser(positiveSeconds))
  .addOption(new Option('--hop <seconds>', 'seconds of new speech between windows').default(1).argParser(positiveSeconds))
  .action(async (files: string[], opts: { model: string; json: boolean; window: number; hop: number }) => {
    process.exitCode = await runClassify(files, opts);
  });

await program.parseAsync(process.argv);
