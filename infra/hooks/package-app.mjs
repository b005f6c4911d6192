// @ts-check
// azd `prepackage` hook for the `api` service: stages the deployment package in dist/azure-package
// (azure.yaml `dist`), which azd then zips and uploads. The package is the bundle `npm run bundle`
// makes: functions.js (every function and what the first request loads, minified, with the
// Functions worker's @azure/functions-core left out), its licences, host.json and a package.json
// whose `main` is functions.js and which has no dependencies. It starts faster than the compiled
// files with node_modules (one file to read instead of hundreds; bench/README.md) and zips to a
// small fraction of their size.
//
// azd fires `prepackage` before its own `npm run build` (it restores, then runs the package step,
// whose first move is the build: cli/azd/pkg/project/service_manager.go and
// framework_service_node.go in Azure/azure-dev), so this hook cannot rely on a build being there:
// on a fresh clone there is none, and an old dist/ would be shipped stale. The bundle is made from
// the TypeScript sources each time. esbuild does not type-check; azd's `npm run build` (tsc), which
// follows this hook, does, and stops the packaging on a type error before anything is zipped.
//
// `func start` on a developer machine keeps using the compiled files (package.json `main` →
// dist/src/functions/*.js): only the deployment package is bundled.
//
// Usage: node infra/hooks/package-app.mjs [outputDirectory]
// Runs on Linux, macOS and Windows (the same script for both azd hook shells).

import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const out = resolve(process.argv[2] ?? join(root, 'dist', 'azure-package'));

/** @param {string} message @returns {never} */
function fail(message) {
  console.error(`package-app: ${message}`);
  process.exit(1);
}

// Nothing of an earlier package (or of the compiled-files layout it replaced) rides along.
rmSync(out, { recursive: true, force: true });
const bundled = spawnSync(process.execPath, [join(root, 'scripts', 'bundle.mjs'), '--out', out, '--no-source-map'], { cwd: root, stdio: 'inherit' });
if (bundled.error) fail(`could not run scripts/bundle.mjs: ${bundled.error.message}`);
if (bundled.status !== 0) fail(`scripts/bundle.mjs failed with exit code ${String(bundled.status)}.`);

/** @type {unknown} */
const manifest = JSON.parse(readFileSync(join(out, 'package.json'), 'utf8'));
const main = typeof manifest === 'object' && manifest !== null ? Reflect.get(manifest, 'main') : undefined;
if (typeof main !== 'string' || !existsSync(join(out, main))) {
  fail(`the bundle's package.json "main" (${JSON.stringify(main)}) names no file in ${out}.`);
}
// azd zips the folder with the rules of the .funcignore inside it.
copyFileSync(join(root, '.funcignore'), join(out, '.funcignore'));

console.log(`package-app: staged ${out} (the bundle: ${main}, its licences, host.json, package.json; no node_modules).`);
