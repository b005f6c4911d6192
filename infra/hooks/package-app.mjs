// @ts-check
// azd `prepackage` hook for the `api` service: stages the deployment package in dist/azure-package
// (azure.yaml `dist`), which azd then zips and uploads.
//
// What the Functions host needs is the compiled app (package.json `main` → dist/src/functions/*.js),
// host.json, package.json and the production dependencies. The repository root holds far more
// (tests, the emulator, the local host, 700+ dev packages), so it is not shipped as it is.
//
// Usage: node infra/hooks/package-app.mjs [outputDirectory]
// Runs on Linux, macOS and Windows (the same script for both azd hook shells).

import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const out = resolve(process.argv[2] ?? join(root, 'dist', 'azure-package'));

function fail(message) {
  console.error(`package-app: ${message}`);
  process.exit(1);
}

/** @type {unknown} */
const manifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const main = typeof manifest === 'object' && manifest !== null ? Reflect.get(manifest, 'main') : undefined;
if (typeof main !== 'string' || !main.startsWith('dist/')) {
  fail(`package.json "main" must point into dist/ (it is ${JSON.stringify(main)}).`);
}
// `main` is e.g. dist/src/functions/*.js: ship the compiled tree it lives in (dist/src), which
// also holds everything those files require.
const compiledTree = main.split('/').slice(0, 2).join('/');
const functionsDir = join(root, dirname(main));
if (!existsSync(functionsDir) || !readdirSync(functionsDir).some((name) => name.endsWith('.js'))) {
  fail(`no compiled functions in ${functionsDir}; run \`npm run build\` first (azd does it before this hook).`);
}

rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
cpSync(join(root, compiledTree), join(out, compiledTree), {
  recursive: true,
  filter: (source) => !source.endsWith('.map'),
});
for (const file of ['host.json', 'package.json', 'package-lock.json', '.funcignore']) {
  if (!existsSync(join(root, file))) fail(`${file} is missing from ${root}.`);
  cpSync(join(root, file), join(out, file));
}

// Exactly the locked production dependencies; no install scripts (none of them needs one).
const npm = spawnSync('npm', ['ci', '--omit=dev', '--ignore-scripts', '--no-audit', '--no-fund', '--prefer-offline'], {
  cwd: out,
  stdio: 'inherit',
  shell: process.platform === 'win32',
});
if (npm.error) fail(`could not run npm: ${npm.error.message}`);
if (npm.status !== 0) fail(`npm ci --omit=dev failed with exit code ${String(npm.status)}.`);
if (!existsSync(join(out, 'node_modules', '@azure', 'functions'))) {
  fail('node_modules/@azure/functions is missing after npm ci; the host could not load the app.');
}

console.log(`package-app: staged ${out} (${compiledTree}, host.json, package.json, production node_modules).`);
