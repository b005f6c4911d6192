// `npm run bundle`: the deployment package as one file. esbuild bundles every function file and the
// modules the first request loads (src/create-services.ts: the storage SDKs, undici, @azure/identity)
// into dist/bundle/functions.js, minified, next to host.json and a package.json whose `main` is that
// file and which has no dependencies. Why: a cold start pays for resolving and reading hundreds of
// small files in node_modules and for parsing them whole; one minified file is read once, and the
// package needs no node_modules at all. `@azure/functions-core` stays external: the Functions worker
// provides it. Usage: `npm run bundle [-- --out <dir>] [-- --no-source-map]`; zip the folder's content
// to deploy it (without the source map, which is only for reading stack traces at home).
import { build } from 'esbuild';
import { copyFileSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const outFlag = process.argv.indexOf('--out');
const out = resolve(outFlag >= 0 && process.argv[outFlag + 1] ? process.argv[outFlag + 1] : join(root, 'dist', 'bundle'));
const withSourceMap = !process.argv.includes('--no-source-map');
const manifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));

const functionsDir = join(root, 'src', 'functions');
const functionFiles = readdirSync(functionsDir)
  .filter((name) => name.endsWith('.ts'))
  .sort()
  .map((name) => join(functionsDir, name));
// The first request would load create-services anyway; loading it with the functions puts the whole
// cold start into one read of one file.
const entry = [...functionFiles, join(root, 'src', 'create-services.ts')].map((file) => `require(${JSON.stringify(`./${relative(root, file)}`)});`).join('\n');

// `import { z } from 'zod'` hands esbuild the namespace as one value, so every member stays, down to
// zod's forty locales; `import * as z` lets it keep only what is used. Same code, a fifth less to load.
const zodNamespace = {
  name: 'zod-namespace',
  setup(builder) {
    builder.onLoad({ filter: /[\\/]src[\\/].*\.ts$/ }, (args) => ({
      contents: readFileSync(args.path, 'utf8').replace(/^import \{ z \} from 'zod';$/gm, "import * as z from 'zod';"),
      loader: 'ts',
    }));
  },
};

rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
const result = await build({
  stdin: { contents: entry, resolveDir: root, sourcefile: 'bundle-entry.js', loader: 'js' },
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  minify: true,
  // Class names appear in logs (AppError subclasses) and are compared nowhere; keep them readable.
  keepNames: true,
  sourcemap: withSourceMap ? 'external' : false,
  legalComments: 'external',
  external: ['@azure/functions-core'],
  // ES modules among the dependencies locate themselves with import.meta.url, which CommonJS lacks.
  define: { 'import.meta.url': 'bundleFileUrl' },
  banner: { js: "const bundleFileUrl = require('node:url').pathToFileURL(__filename).href;" },
  outfile: join(out, 'functions.js'),
  metafile: true,
  plugins: [zodNamespace],
  logLevel: 'warning',
});

copyFileSync(join(root, 'host.json'), join(out, 'host.json'));
writeFileSync(
  join(out, 'package.json'),
  `${JSON.stringify({ name: manifest.name, version: manifest.version, private: true, type: 'commonjs', main: 'functions.js', engines: manifest.engines }, null, 2)}\n`,
);

const size = (file) => statSync(join(out, file)).size;
const inputs = Object.keys(result.metafile.inputs).length;
console.log(
  `bundled ${functionFiles.length} function files and create-services (${inputs} modules) into ${relative(root, out)}/functions.js: ` +
    `${(size('functions.js') / 1024).toFixed(0)} KiB, with host.json, package.json and functions.js.LEGAL.txt (the licences)` +
    (withSourceMap ? '; functions.js.map is for reading stack traces, not for the package (.funcignore; or --no-source-map)' : ''),
);
