// @ts-check
// azd `prepackage` hook for the `api` service: builds the app and stages the deployment package in
// dist/azure-package (azure.yaml `dist`), which azd then zips and uploads.
//
// azd fires `prepackage` before its own `npm run build` (it restores, then runs the package step,
// whose first move is the build: cli/azd/pkg/project/service_manager.go and
// framework_service_node.go in Azure/azure-dev), so this hook cannot rely on a build being there:
// on a fresh clone there is none, and an old dist/ would be shipped stale. It builds what it ships.
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

/** @param {string} message @returns {never} */
function fail(message) {
  console.error(`package-app: ${message}`);
  process.exit(1);
}

/** @param {string} command @param {string[]} args @param {string} cwd @param {string} what */
function run(command, args, cwd, what) {
  const result = spawnSync(command, args, { cwd, stdio: 'inherit', shell: process.platform === 'win32' });
  if (result.error) fail(`could not run ${command}: ${result.error.message}`);
  if (result.status !== 0) fail(`${what} failed with exit code ${String(result.status)}.`);
}

/** @type {unknown} */
const manifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const main = typeof manifest === 'object' && manifest !== null ? Reflect.get(manifest, 'main') : undefined;
if (typeof main !== 'string' || !main.startsWith('dist/')) {
  fail(`package.json "main" must point into dist/ (it is ${JSON.stringify(main)}).`);
}
// `main` is e.g. dist/src/functions/*.js: ship the compiled tree it lives in (dist/src), which
// also holds everything those files require. Compiled afresh, so no file of an older build (a
// function since removed, say) rides along.
const compiledTree = main.split('/').slice(0, 2).join('/');
rmSync(join(root, compiledTree), { recursive: true, force: true });
run('npm', ['run', 'build'], root, 'npm run build');
const functionsDir = join(root, dirname(main));
if (!existsSync(functionsDir) || !readdirSync(functionsDir).some((name) => name.endsWith('.js'))) {
  fail(`npm run build left no compiled functions in ${functionsDir}.`);
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
run('npm', ['ci', '--omit=dev', '--ignore-scripts', '--no-audit', '--no-fund', '--prefer-offline'], out, 'npm ci --omit=dev');
if (!existsSync(join(out, 'node_modules', '@azure', 'functions'))) {
  fail('node_modules/@azure/functions is missing after npm ci; the host could not load the app.');
}

console.log(`package-app: staged ${out} (${compiledTree}, host.json, package.json, production node_modules).`);
