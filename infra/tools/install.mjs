// @ts-check
// Installs the tools that check the infrastructure, pinned in infra/tools/tools.json, from NuGet
// into .tools/ (git-ignored): the Bicep CLI (the compiler azd and `az bicep` run) and PowerShell 7
// (runs the Windows twin of the postdeploy hook). CI runs this first; on a laptop the tests also
// accept `bicep` (or the copy `az bicep` installed) and `pwsh` from PATH.
//
// Idempotent: a tool already in .tools/ at the pinned version is only asked for its version.
// Needs the .NET SDK (`dotnet`), which restores from the NuGet feeds configured on the machine.
//
// Usage: node infra/tools/install.mjs [bicep] [pwsh]     install (default: all)
//        node infra/tools/install.mjs --path bicep       print where the pinned tool lives

import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '..', '..');
const cache = join(root, '.tools');

/** @typedef {{ version: string, package: string }} Pin */
/** @type {Record<string, Pin>} */
const pins = JSON.parse(readFileSync(join(here, 'tools.json'), 'utf8'));

/** @param {string} message @returns {never} */
function fail(message) {
  console.error(`install-tools: ${message}`);
  process.exit(1);
}

/** Where a pinned tool lives; test/helpers/system-tools.ts computes the same path. */
function toolPath(/** @type {string} */ name) {
  const pin = pins[name];
  if (!pin) fail(`unknown tool ${name}; known: ${Object.keys(pins).join(', ')}.`);
  return join(cache, `${name}-${pin.version}`, process.platform === 'win32' ? `${name}.exe` : name);
}

/** True when the file exists and reports the pinned version. */
function isInstalled(/** @type {string} */ name) {
  const path = toolPath(name);
  if (!existsSync(path)) return false;
  const result = spawnSync(path, ['--version'], { encoding: 'utf8', timeout: 60_000 });
  return result.status === 0 && result.stdout.includes(pins[name]?.version ?? '?');
}

/** The NuGet runtime identifier of this machine, as the Bicep CLI packages are named. */
function runtimeIdentifier() {
  const os = { linux: 'linux', darwin: 'osx', win32: 'win' }[process.platform];
  const arch = { x64: 'x64', arm64: 'arm64' }[process.arch];
  if (!os || !arch) fail(`no Bicep CLI package for ${process.platform}/${process.arch}.`);
  return `${os}-${arch}`;
}

/** Runs dotnet, failing with its output when it fails. */
function dotnet(/** @type {string[]} */ args, /** @type {string} */ cwd) {
  const result = spawnSync('dotnet', args, { cwd, encoding: 'utf8', env: { ...process.env, DOTNET_NOLOGO: '1', DOTNET_CLI_TELEMETRY_OPTOUT: '1' } });
  if (result.error) fail(`could not run dotnet (${result.error.message}); install the .NET SDK 8 or later.`);
  if (result.status !== 0) fail(`dotnet ${args.slice(0, 2).join(' ')} failed:\n${result.stdout}${result.stderr}`);
  return result.stdout;
}

/**
 * The Bicep CLI is a NuGet package holding one self-contained executable: a throw-away project
 * downloads it (PackageDownload restores a package without referencing it), then the executable
 * is moved out.
 */
function installBicep(/** @type {string} */ staging) {
  const pin = pins['bicep'] ?? fail('tools.json has no bicep entry.');
  const packageId = pin.package.replace('{rid}', runtimeIdentifier());
  // The SDK's own target framework always restores without downloading a targeting pack.
  const sdkMajor = dotnet(['--version'], staging).trim().split('.')[0];
  writeFileSync(
    join(staging, 'restore.csproj'),
    `<Project Sdk="Microsoft.NET.Sdk">
  <PropertyGroup><TargetFramework>net${sdkMajor}.0</TargetFramework></PropertyGroup>
  <ItemGroup><PackageDownload Include="${packageId}" Version="[${pin.version}]" /></ItemGroup>
</Project>
`,
  );
  const packages = join(staging, 'packages');
  dotnet(['restore', 'restore.csproj', '--packages', packages, '-p:ImportDirectoryBuildProps=false', '-p:ImportDirectoryBuildTargets=false'], staging);
  const executable = process.platform === 'win32' ? 'bicep.exe' : 'bicep';
  const downloaded = join(packages, packageId.toLowerCase(), pin.version, 'tools', executable);
  if (!existsSync(downloaded)) fail(`${packageId} ${pin.version} restored, but it holds no tools/${executable}.`);
  const folder = join(staging, 'tool');
  mkdirSync(folder);
  renameSync(downloaded, join(folder, executable));
  chmodSync(join(folder, executable), 0o755);
  return folder;
}

/** PowerShell is a .NET tool; --tool-path keeps it out of the user's global tools. */
function installPwsh(/** @type {string} */ staging) {
  const pin = pins['pwsh'] ?? fail('tools.json has no pwsh entry.');
  const folder = join(staging, 'tool');
  dotnet(['tool', 'install', pin.package, '--version', pin.version, '--tool-path', folder], staging);
  return folder;
}

/** @type {Record<string, (staging: string) => string>} */
const installers = { bicep: installBicep, pwsh: installPwsh };

function install(/** @type {string} */ name) {
  const started = process.hrtime.bigint();
  const seconds = () => (Number(process.hrtime.bigint() - started) / 1e9).toFixed(1);
  const target = dirname(toolPath(name));
  const shown = relative(root, target);
  if (isInstalled(name)) {
    console.log(`install-tools: ${name} ${pins[name]?.version} already in ${shown} (${seconds()} s)`);
    return;
  }
  const installer = installers[name] ?? fail(`no installer for ${name}.`);
  mkdirSync(cache, { recursive: true });
  // Built beside its final place and renamed into it, so an interrupted install leaves nothing
  // that looks installed.
  const staging = mkdtempSync(join(cache, `.${name}-`));
  try {
    const built = installer(staging);
    rmSync(target, { recursive: true, force: true });
    renameSync(built, target);
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
  if (!isInstalled(name)) fail(`${name} was installed in ${shown} but does not report version ${pins[name]?.version}.`);
  console.log(`install-tools: installed ${name} ${pins[name]?.version} in ${shown} (${seconds()} s)`);
}

const args = process.argv.slice(2);
if (args[0] === '--path') {
  const name = args[1] ?? fail('--path needs a tool name.');
  const path = toolPath(name);
  if (!isInstalled(name)) fail(`${name} ${pins[name]?.version} is not installed in ${relative(root, dirname(path))}; run node infra/tools/install.mjs ${name}.`);
  console.log(path);
} else {
  for (const name of args.length > 0 ? args : Object.keys(pins)) install(name);
}
