/**
 * Builds the self-contained program with esbuild: one ES module holding the CLI, the daemon
 * and every dependency that is plain JavaScript, beside the files it reads at run time.
 *
 *   npm run bundle                          # writes dist/bundle/
 *   node dist/scripts/bundle.js --out DIR   # after `npm run build`
 *
 * The folder needs nothing but Node.js 20: copy it anywhere and run `node ser-edge.mjs …`
 * (or `./ser-edge.mjs …`). `npm pack` ships it (prepack runs this), and bin/ser-edge.js runs
 * it in an installed package.
 *
 *   ser-edge.mjs              the program (shebang, executable)
 *   wasm/                     TensorFlow.js's wasm backend binaries (only the tfjs GRU runtime loads them)
 *   models/default/           the shipped model bundle
 *   schemas/                  JSON Schemas of the MQTT payloads, the config and the model manifest
 *   firmware-config/          device profiles, the systemd unit, the example broker ACL
 *   install-gateway.sh        the gateway installer (scripts/install-gateway.sh)
 *   package.json              name and version (`--version` reads it)
 *   THIRD_PARTY_LICENSES.txt  the licence of every package inside ser-edge.mjs
 */
import { build, type Message, type Metafile, type Plugin } from 'esbuild';
import { existsSync, readFileSync } from 'node:fs';
import { cp, mkdir, readdir, readFile, rename, rm, stat, writeFile, chmod } from 'node:fs/promises';
import { isBuiltin } from 'node:module';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { packageRoot } from '../src/config/package-paths.js';

export const BUNDLE_PROGRAM = 'ser-edge.mjs';

/**
 * Packages the bundle leaves to the machine: each is optional, looked for beside the bundle
 * at run time (Node's resolution from ser-edge.mjs), and the code that asks for one carries
 * on without it. Anything else the bundle would leave unresolved fails the build.
 */
export const OPTIONAL_EXTERNALS: Record<string, string> = {
  '@tensorflow/tfjs-node': 'native TensorFlow backend (model.backends "tensorflow"); imported by name only when a profile asks for it',
  '@tensorflow/tfjs-node-gpu': 'the same on CUDA (Jetson)',
  bufferutil: "native speed-up for ws (mqtt.js's WebSocket transport), tried in a try/catch",
  'utf-8-validate': 'the same',
  encoding: "node-fetch's optional charset conversion (TensorFlow.js's model fetching), tried in a try/catch",
  'osx-temperature-sensor': "systeminformation's macOS-only temperature reader, tried in a try/catch",
  'macos-temperature-sensor': 'the same',
};

/**
 * The binaries @tensorflow/tfjs-backend-wasm picks from under Node: SIMD where the CPU has
 * it, plain otherwise. Its threaded build is never chosen under Node (the backend turns
 * threads off there), so it is not shipped.
 */
const TFJS_WASM_FILES = ['tfjs-backend-wasm-simd.wasm', 'tfjs-backend-wasm.wasm'];

/**
 * Run-time loads esbuild cannot follow (a require or import of a computed name), by the
 * file they are in. Each is known to be unreachable or optional in ser-edge; a new one fails
 * the build, since in a bundle it would fail only on a gateway, at run time.
 */
const UNBUNDLED_DYNAMIC_LOADS: { file: RegExp; why: string }[] = [
  { file: /^src\/model\/tf-backend\.ts$/, why: 'the optional @tensorflow/tfjs-node, imported by name (OPTIONAL_EXTERNALS)' },
  { file: /node_modules\/@eshaz\/web-worker\//, why: "the FLAC decoder's worker-thread variant, which ser-edge does not use (it decodes on the calling thread)" },
];

/**
 * Packages the bundle replaces with a stand-in that throws, because ser-edge never runs
 * them and they are large. ogg-opus-decoder imports its machine-learning speech
 * enhancement (LACE and NoLACE, 4 MiB of wasm) only for a decoder built with
 * `speechQualityEnhancement`; ser-edge decodes plain Opus, so that training, `classify`
 * and the daemon hear what the encoder wrote.
 */
const LEFT_OUT_PACKAGES: Record<string, { exports: string[]; why: string }> = {
  '@wasm-audio-decoders/opus-ml': { exports: ['OpusMLDecoder', 'OpusMLDecoderWebWorker'], why: "Opus speech enhancement, which ser-edge never asks ogg-opus-decoder for" },
};

/** The one module allowed to import the tfjs wasm backend: it points the backend at wasm/. */
const TFJS_WASM_LOADER = 'src/model/tfjs-wasm-backend.ts';

/** Copied from the package root as they are. */
const DATA_FOLDERS = ['models/default', 'schemas', 'firmware-config'];

/**
 * The gateway installer travels in the bundle (docs/installing.md runs it from there), so the
 * folder copied to a gateway installs itself. Copied when the checkout has it.
 */
const GATEWAY_INSTALLER = 'scripts/install-gateway.sh';

/**
 * Shims at the top of ser-edge.mjs for the CommonJS packages inside it, which expect
 * `require`, `__filename` and `__dirname`. `require` resolves from the bundle's own folder,
 * which is where an optional external is looked for. The imports get names no bundled
 * module uses, since esbuild cannot rename around a banner.
 */
const BANNER = [
  '#!/usr/bin/env node',
  "import { createRequire as __serEdgeCreateRequire } from 'node:module';",
  "import { fileURLToPath as __serEdgeFileURLToPath } from 'node:url';",
  "import { dirname as __serEdgeDirname } from 'node:path';",
  'const require = __serEdgeCreateRequire(import.meta.url);',
  'const __filename = __serEdgeFileURLToPath(import.meta.url);',
  'const __dirname = __serEdgeDirname(__filename);',
].join('\n');

export interface BundleResult {
  dir: string;
  /** Bytes of ser-edge.mjs. */
  programBytes: number;
  /** Bytes of every file in the folder. */
  totalBytes: number;
  files: number;
  /** Packages inside ser-edge.mjs. */
  packages: number;
}

interface PackageInfo {
  name: string;
  version: string;
  license: string;
  dir: string;
}

/**
 * Builds the bundle into `outDir`, replacing a bundle already there. The new one is built
 * beside it and moved into place whole, so a failed build leaves the old one intact.
 */
export async function buildBundle(options: { outDir: string; root?: string }): Promise<BundleResult> {
  const root = options.root ?? packageRoot();
  const outDir = resolve(options.outDir);
  await refuseToReplaceNonBundle(outDir);
  const staging = `${outDir}.partial-${process.pid}`;
  await rm(staging, { recursive: true, force: true });
  await mkdir(staging, { recursive: true });
  try {
    const manifest = JSON.parse(await readFile(join(root, 'package.json'), 'utf8')) as Record<string, unknown>;
    const result = await build({
      absWorkingDir: root,
      entryPoints: [join(root, 'src', 'cli.ts')],
      outfile: join(staging, BUNDLE_PROGRAM),
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node20',
      banner: { js: BANNER },
      define: { SER_EDGE_BUNDLE: 'true' },
      external: Object.keys(OPTIONAL_EXTERNALS),
      // Whitespace and syntax only: identifiers keep their names, so a stack trace from a
      // gateway's log still says which function failed.
      minifyWhitespace: true,
      minifySyntax: true,
      // Written to ser-edge.mjs.LEGAL.txt, then folded into THIRD_PARTY_LICENSES.txt: they
      // carry the copyright lines of packages that ship no licence file.
      legalComments: 'external',
      metafile: true,
      logLevel: 'silent',
      // Surfaced as warnings so checkDynamicLoads sees them (esbuild files them under debug).
      logOverride: { 'unsupported-require-call': 'warning', 'unsupported-dynamic-import': 'warning' },
      plugins: [
        staticRecorderLoader,
        leftOutPackages,
        {
          name: 'tfjs-wasm-through-its-loader',
          setup(b) {
            b.onResolve({ filter: /^@tensorflow\/tfjs-backend-wasm$/ }, (args) => {
              if (relative(root, args.importer) === TFJS_WASM_LOADER) return undefined;
              return {
                errors: [{ text: `${relative(root, args.importer)} imports @tensorflow/tfjs-backend-wasm directly: import ${TFJS_WASM_LOADER.replace(/^src\//, '').replace(/\.ts$/, '.js')} instead, which points the backend at the bundle's wasm/ folder before it can start` }],
              };
            });
          },
        },
      ],
    });
    checkDynamicLoads(root, result.warnings);
    checkExternals(result.metafile);
    await chmod(join(staging, BUNDLE_PROGRAM), 0o755);

    await mkdir(join(staging, 'wasm'));
    const tfjsWasmDist = join(root, 'node_modules', '@tensorflow', 'tfjs-backend-wasm', 'dist');
    for (const file of TFJS_WASM_FILES) await cp(join(tfjsWasmDist, file), join(staging, 'wasm', file));
    for (const folder of DATA_FOLDERS) await cp(join(root, folder), join(staging, folder), { recursive: true });
    if (existsSync(join(root, GATEWAY_INSTALLER))) {
      await cp(join(root, GATEWAY_INSTALLER), join(staging, basename(GATEWAY_INSTALLER)));
      await chmod(join(staging, basename(GATEWAY_INSTALLER)), 0o755);
    }

    const bundleManifest = {
      name: manifest['name'],
      version: manifest['version'],
      description: manifest['description'],
      license: manifest['license'],
      type: 'module',
      engines: manifest['engines'],
      bin: { 'ser-edge': BUNDLE_PROGRAM },
      private: true,
    };
    await writeFile(join(staging, 'package.json'), `${JSON.stringify(bundleManifest, null, 2)}\n`);
    const packages = bundledPackages(root, result.metafile);
    const legalComments = join(staging, `${BUNDLE_PROGRAM}.LEGAL.txt`);
    const comments = existsSync(legalComments) ? await readFile(legalComments, 'utf8') : '';
    await rm(legalComments, { force: true });
    await writeFile(join(staging, 'THIRD_PARTY_LICENSES.txt'), await licenceText(packages, comments));

    await rm(outDir, { recursive: true, force: true });
    await rename(staging, outDir);
    const sizes = await folderSize(outDir);
    return { dir: outDir, programBytes: (await stat(join(outDir, BUNDLE_PROGRAM))).size, totalBytes: sizes.bytes, files: sizes.files, packages: packages.length };
  } catch (err) {
    await rm(staging, { recursive: true, force: true });
    throw err;
  }
}

/** `--out` is deleted and rewritten: only an empty folder or an earlier bundle may be. */
async function refuseToReplaceNonBundle(outDir: string): Promise<void> {
  if (!existsSync(outDir)) return;
  const entries = await readdir(outDir);
  if (entries.length === 0 || entries.includes(BUNDLE_PROGRAM)) return;
  throw new Error(`${outDir} is not empty and holds no ${BUNDLE_PROGRAM}: the bundle replaces its folder whole, so name an empty or new folder with --out`);
}

/**
 * node-record-lpcm16 (the microphone source) picks its recorder module by a computed path,
 * `require(path.resolve(__dirname, name))`, which a bundle cannot serve: every capture would
 * fail with "No such recorder found". Its loader is replaced by one that requires each
 * recorder file of the package by name, so they are bundled. The original is checked first,
 * so an update that changes the loader stops the build instead of being papered over.
 */
const staticRecorderLoader: Plugin = {
  name: 'node-record-lpcm16-static-recorders',
  setup(b) {
    b.onLoad({ filter: /node-record-lpcm16[\\/]recorders[\\/]index\.js$/ }, async (args) => {
      const original = await readFile(args.path, 'utf8');
      if (!original.includes('require(recoderPath)')) {
        return { errors: [{ text: `${args.path} no longer loads recorders as scripts/bundle.ts expects: check how it finds them and update staticRecorderLoader` }] };
      }
      const recorders = (await readdir(dirname(args.path))).filter((f) => f.endsWith('.js') && f !== 'index.js').map((f) => f.replace(/\.js$/, ''));
      const table = recorders.map((r) => `  ${JSON.stringify(r)}: require(${JSON.stringify(`./${r}.js`)}),`).join('\n');
      return {
        loader: 'js',
        contents:
          `// Replaced by scripts/bundle.ts: the recorders by name, so that esbuild bundles them.\n` +
          `const recorders = {\n${table}\n};\n` +
          `function load(recorderName) {\n` +
          `  if (!Object.prototype.hasOwnProperty.call(recorders, recorderName)) throw new Error('No such recorder found: ' + recorderName);\n` +
          `  return recorders[recorderName];\n}\n` +
          `module.exports = { load };\n`,
      };
    });
  },
};

const leftOutPackages: Plugin = {
  name: 'left-out-packages',
  setup(b) {
    const names = Object.keys(LEFT_OUT_PACKAGES).map((n) => n.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&'));
    b.onResolve({ filter: new RegExp(`^(${names.join('|')})$`) }, (args) => ({ path: args.path, namespace: 'left-out' }));
    b.onLoad({ filter: /.*/, namespace: 'left-out' }, (args) => {
      const { exports, why } = LEFT_OUT_PACKAGES[args.path]!;
      const error = JSON.stringify(`${args.path} (${why}) is not in the ser-edge bundle`);
      return { loader: 'js', contents: exports.map((name) => `export class ${name} { constructor() { throw new Error(${error}); } }`).join('\n') + '\n' };
    });
  },
};

function checkDynamicLoads(root: string, warnings: Message[]): void {
  const unknown: string[] = [];
  for (const warning of warnings) {
    if (warning.id !== 'unsupported-require-call' && warning.id !== 'unsupported-dynamic-import') continue;
    const path = warning.location === null ? '?' : relative(root, resolve(root, warning.location.file));
    const file = path.includes('node_modules/') ? path.slice(path.indexOf('node_modules/')) : path;
    if (UNBUNDLED_DYNAMIC_LOADS.some((known) => known.file.test(file))) continue;
    unknown.push(`${file}:${warning.location?.line ?? '?'}: ${warning.location?.lineText.trim() ?? warning.text}`);
  }
  if (unknown.length > 0) {
    throw new Error(
      `the bundle would load code by a computed name at run time, which esbuild cannot bundle:\n  ${unknown.join('\n  ')}\n` +
        'make the name a literal (or replace the loader, as staticRecorderLoader does), or, if that path never runs in ser-edge, add the file to UNBUNDLED_DYNAMIC_LOADS with the reason',
    );
  }
}

function checkExternals(metafile: Metafile): void {
  const unexpected = new Set<string>();
  for (const output of Object.values(metafile.outputs)) {
    for (const imported of output.imports) {
      if (imported.external && !isBuiltin(imported.path) && !(imported.path in OPTIONAL_EXTERNALS)) unexpected.add(imported.path);
    }
  }
  if (unexpected.size > 0) {
    throw new Error(
      `the bundle would load ${[...unexpected].join(', ')} from node_modules at run time, which a bundle copied alone does not have: ` +
        'let esbuild include it, or, if it is optional and its caller copes without it, add it to OPTIONAL_EXTERNALS in scripts/bundle.ts with the reason',
    );
  }
}

/** Every package with a file inside the bundle, from esbuild's list of inputs. */
function bundledPackages(root: string, metafile: Metafile): PackageInfo[] {
  const dirs = new Set<string>();
  for (const input of Object.keys(metafile.inputs)) {
    const match = /^(.*node_modules\/(?:@[^/]+\/)?[^/]+)\//.exec(input);
    if (match) dirs.add(match[1]!);
  }
  const found = new Map<string, PackageInfo>();
  for (const dir of dirs) {
    const manifest = JSON.parse(readFileSync(join(root, dir, 'package.json'), 'utf8')) as { name?: string; version?: string; license?: unknown };
    const name = manifest.name ?? basename(dir);
    const version = manifest.version ?? '?';
    const license = typeof manifest.license === 'string' ? manifest.license : 'see the package';
    found.set(`${name}@${version}`, { name, version, license, dir: join(root, dir) });
  }
  return [...found.values()].sort((a, b) => a.name.localeCompare(b.name));
}


/**
 * Every bundled package's licence and notice files, and the licence comments of the bundled
 * sources. A package that ships no licence file is pointed at the text of the same licence
 * as another package ships it; its copyright lines are among the source comments.
 */
async function licenceText(packages: PackageInfo[], sourceComments: string): Promise<string> {
  const filesOf = new Map<PackageInfo, string[]>();
  for (const p of packages) filesOf.set(p, (await readdir(p.dir)).filter((f) => /^(licen[cs]e|copying|notice)/i.test(f)).sort());
  const parts = [
    'ser-edge.mjs contains the following packages, each under its own licence, reproduced below,',
    'followed by the licence comments of their source files.\n',
    ...packages.map((p) => `  ${p.name} ${p.version} (${p.license})`),
    '',
  ];
  for (const p of packages) {
    parts.push('='.repeat(78), `${p.name} ${p.version} (${p.license})`, '='.repeat(78));
    const files = filesOf.get(p)!;
    if (files.length === 0) {
      const sameLicence = packages.find((other) => other.license === p.license && filesOf.get(other)!.length > 0);
      parts.push(`The package ships no licence file; its package.json says ${p.license}${sameLicence ? `, whose text is reproduced here under ${sameLicence.name}` : ''}.`, '');
    }
    for (const f of files) parts.push((await readFile(join(p.dir, f), 'utf8')).trimEnd(), '');
  }
  if (sourceComments.trim() !== '') parts.push('='.repeat(78), 'Licence comments of the bundled source files', '='.repeat(78), sourceComments.trimEnd(), '');
  return `${parts.join('\n')}\n`;
}

async function folderSize(dir: string): Promise<{ bytes: number; files: number }> {
  let bytes = 0;
  let files = 0;
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile()) continue;
    bytes += (await stat(join(entry.parentPath, entry.name))).size;
    files += 1;
  }
  return { bytes, files };
}

const USAGE = `Usage: node dist/scripts/bundle.js [--out DIR]

Builds the self-contained program (esbuild): DIR/ser-edge.mjs with the CLI, the daemon and
every plain-JavaScript dependency, beside the model, schemas, device profiles and the
TensorFlow.js wasm binaries it reads. Copy DIR anywhere with Node.js 20 and run
\`node ser-edge.mjs --help\`. \`npm run bundle\` builds the sources first.

  --out DIR   where to write it (default: dist/bundle); replaced whole
  -h, --help  this text
`;

async function main(argv: string[]): Promise<number> {
  let outDir = join(packageRoot(), 'dist', 'bundle');
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '-h' || arg === '--help') {
      process.stdout.write(USAGE);
      return 0;
    }
    if (arg === '--out' && argv[i + 1] !== undefined) outDir = resolve(argv[++i]!);
    else {
      process.stderr.write(`bundle: ${arg === '--out' ? '--out needs a folder' : `unknown argument ${arg}`}\n\n${USAGE}`);
      return 2;
    }
  }
  const started = performance.now();
  const bundle = await buildBundle({ outDir });
  const mb = (n: number): string => (n / 1024 / 1024).toFixed(1);
  const shown = relative(process.cwd(), join(bundle.dir, BUNDLE_PROGRAM));
  process.stderr.write(
    `${shown.startsWith('..') ? join(bundle.dir, BUNDLE_PROGRAM) : shown}: ${mb(bundle.programBytes)} MiB (${bundle.packages} packages); ` +
      `folder ${mb(bundle.totalBytes)} MiB in ${bundle.files} files; ${((performance.now() - started) / 1000).toFixed(1)} s\n`,
  );
  return 0;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  try {
    process.exitCode = await main(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`bundle: ${(err as Error).message}\n`);
    process.exitCode = 1;
  }
}
