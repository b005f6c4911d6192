import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, sep } from 'node:path';

import type * as FunctionsCore from '../../local-host/functions-core';
import { loadFunctionApp } from '../../local-host/registry';
import { describeWithTool } from '../helpers/system-tools';
import { captureAppFunctions } from './app-registrations';
import { PROJECT_ROOT } from './bicep-cli';

jest.mock('@azure/functions-core', () => jest.requireActual<typeof FunctionsCore>('../../local-host/functions-core'), { virtual: true });

/**
 * `azd package` (and the package step of `azd deploy` / `azd up`) for this project's `api` service,
 * step by step as azd runs it (Azure/azure-dev, cli/azd/pkg/project):
 *   1. restore: `npm install`, skipped when node_modules is up to date (framework_service_node.go, Restore);
 *   2. the service's `prepackage` hooks (service_manager.go, Package → runCommand → Invoke);
 *   3. the Node framework's Package: `npm run build`, then the folder azure.yaml names in `dist` is
 *      the package and must exist and hold something (framework_service_node.go, Package);
 *   4. the Function App target zips that folder, leaving out what its own .funcignore lists
 *      (service_target_functionapp.go, Package → project_utils.go, createDeployableZip).
 * The restore is stood in for by the node_modules `npm ci` already made from the same lock file.
 */
const azureYaml = readFileSync(join(PROJECT_ROOT, 'azure.yaml'), 'utf8');
const serviceDist = /\n {4}dist: (\S+)\n/.exec(azureYaml)?.[1] ?? '';
const prepackage = /\n {6}prepackage:\n {8}posix:\n {10}shell: sh\n {10}run: (.+)\n/.exec(azureYaml)?.[1] ?? '';

interface PackageRun {
  readonly output: string;
  /** Paths in the zip azd would upload, relative to it, with / separators. */
  readonly zipped: string[];
  readonly packageDir: string;
}

/** A fresh clone of the working tree: the files git tracks or would track, nothing it ignores (no dist/, no node_modules). */
function cloneWorkingTree(git: string, target: string): void {
  const listed = spawnSync(git, ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: PROJECT_ROOT, encoding: 'utf8' });
  if (listed.status !== 0) throw new Error(`git ls-files failed: ${listed.stderr}`);
  for (const file of listed.stdout.split('\0').filter(Boolean)) {
    const source = join(PROJECT_ROOT, file);
    if (!existsSync(source)) continue; // deleted in the working tree, not yet committed
    mkdirSync(dirname(join(target, file)), { recursive: true });
    cpSync(source, join(target, file));
  }
}

function step(what: string, command: string, args: string[], cwd: string): string {
  const result = spawnSync(command, args, { cwd, encoding: 'utf8', timeout: 300_000 });
  const output = `${result.stdout}${result.stderr}`;
  if (result.status !== 0) throw new Error(`${what} failed (exit ${String(result.status)}):\n${output}`);
  return output;
}

/** Steps 2 to 4 above, in the clone. */
function azdPackage(clone: string): PackageRun {
  let output = step(`prepackage hook (${prepackage})`, 'sh', ['-c', prepackage], clone);
  output += step('npm run build', 'npm', ['run', 'build'], clone);
  const packageDir = join(clone, serviceDist);
  if (!existsSync(packageDir) || readdirSync(packageDir).length === 0) {
    throw new Error(`package source '${packageDir}' is empty or does not exist (azd stops here)`);
  }
  return { output, packageDir, zipped: zipEntries(packageDir) };
}

/** What createDeployableZip keeps: everything except .funcignore itself, local.settings.json and the .funcignore patterns. */
function zipEntries(root: string): string[] {
  const patterns = readFileSync(join(root, '.funcignore'), 'utf8')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'));
  for (const pattern of patterns) {
    // Only basename globs are understood here; a path pattern would need more of gitignore.
    if (pattern.includes('/')) throw new Error(`.funcignore pattern ${pattern} is not a basename glob; teach zipEntries about it`);
  }
  const ignored = (name: string) => name === '.funcignore' || name === 'local.settings.json' || patterns.some((pattern) => globToRegExp(pattern).test(name));
  const walk = (dir: string): string[] =>
    readdirSync(dir)
      .filter((name) => !ignored(name))
      .flatMap((name) => (statSync(join(dir, name)).isDirectory() ? walk(join(dir, name)) : [relative(root, join(dir, name)).split(sep).join('/')]));
  return walk(root);
}

function globToRegExp(glob: string): RegExp {
  return new RegExp(`^${glob.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`);
}

describeWithTool('git', 'azd packaging the api service on a clean clone (azd order: restore, prepackage, npm run build, zip)', (git) => {
  let clone: string;
  let fresh: PackageRun;
  // The functions src/functions registers (captured once: a module loaded before registers nothing again).
  const sourceFunctions = captureAppFunctions()
    .map((fn) => fn.name)
    .sort();

  beforeAll(() => {
    clone = mkdtempSync(join(tmpdir(), 'azd-package-'));
    cloneWorkingTree(git.path, clone);
    symlinkSync(join(PROJECT_ROOT, 'node_modules'), join(clone, 'node_modules'), 'dir');
    expect(existsSync(join(clone, 'dist'))).toBe(false);
    fresh = azdPackage(clone);
  }, 600_000);
  afterAll(() => rmSync(clone, { recursive: true, force: true }));

  it('reads its hook and package folder from azure.yaml', () => {
    expect(prepackage).toBe('node infra/hooks/package-app.mjs');
    expect(serviceDist).toBe('dist/azure-package');
  });

  it('packages a clone that has no dist/ yet', () => {
    expect(fresh.zipped).toContain('host.json');
    expect(fresh.zipped).toContain('package.json');
  });

  it('ships the bundle and nothing else: one script, its licences, host.json and a package.json without dependencies that points at it', () => {
    expect([...fresh.zipped].sort()).toEqual(['functions.js', 'functions.js.LEGAL.txt', 'host.json', 'package.json']);
    const manifest = JSON.parse(readFileSync(join(fresh.packageDir, 'package.json'), 'utf8')) as Record<string, unknown>;
    expect(manifest).toMatchObject({ main: 'functions.js', type: 'commonjs' });
    expect(manifest['dependencies']).toBeUndefined();
    expect(readFileSync(join(fresh.packageDir, 'host.json'), 'utf8')).toBe(readFileSync(join(PROJECT_ROOT, 'host.json'), 'utf8'));
  });

  it('leaves the developer\'s `func start` on the compiled files: package.json `main` and .funcignore at the root are unchanged', () => {
    const manifest = JSON.parse(readFileSync(join(clone, 'package.json'), 'utf8')) as Record<string, unknown>;
    expect(manifest['main']).toBe('dist/src/functions/*.js');
    // azd's own build, after the hook, still compiles them.
    expect(existsSync(join(clone, 'dist', 'src', 'functions', 'health-get.js'))).toBe(true);
    expect(readFileSync(join(fresh.packageDir, '.funcignore'), 'utf8')).toBe(readFileSync(join(PROJECT_ROOT, '.funcignore'), 'utf8'));
  });

  it('loads on its own and registers the same functions as the source', () => {
    const packaged = loadFunctionApp(fresh.packageDir, (file) => jest.requireActual(file));
    expect(packaged.files).toEqual([join(fresh.packageDir, 'functions.js')]);
    expect(packaged.functions.map((fn) => fn.name).sort()).toEqual(sourceFunctions);
  });

  it('loads in a plain Node process, away from any node_modules, given only the @azure/functions-core the worker provides', () => {
    const away = mkdtempSync(join(tmpdir(), 'azd-package-alone-'));
    try {
      for (const file of fresh.zipped) cpSync(join(fresh.packageDir, file), join(away, 'wwwroot', file));
      // What the worker provides, reduced to what @azure/functions calls while the app registers.
      const core = join(away, 'worker', 'node_modules', '@azure', 'functions-core');
      mkdirSync(core, { recursive: true });
      writeFileSync(
        join(core, 'index.js'),
        [
          'const registered = (globalThis.registeredFunctions = []);',
          'const disposable = { dispose() {} };',
          "exports.version = '4.x-test';",
          'exports.setProgrammingModel = () => {};',
          'exports.getProgrammingModel = () => undefined;',
          'exports.registerFunction = (metadata) => (registered.push(metadata.name), disposable);',
          'exports.registerHook = () => disposable;',
          'exports.log = () => {};',
        ].join('\n'),
      );
      const loaded = spawnSync(process.execPath, ['-e', "require(process.argv[1]); console.log(JSON.stringify(globalThis.registeredFunctions.sort()))", join(away, 'wwwroot', 'functions.js')], {
        cwd: join(away, 'wwwroot'),
        env: { PATH: process.env['PATH'] ?? '', NODE_PATH: join(away, 'worker', 'node_modules') },
        encoding: 'utf8',
        timeout: 60_000,
      });
      expect(loaded.stderr).toBe('');
      expect(sourceFunctions.length).toBeGreaterThan(10);
      expect(JSON.parse(loaded.stdout) as string[]).toEqual(sourceFunctions);
    } finally {
      rmSync(away, { recursive: true, force: true });
    }
  });

  it('leaves out what an older package left in dist/azure-package', () => {
    // The layout before the bundle: compiled files and production node_modules.
    const stale = join(clone, serviceDist);
    mkdirSync(join(stale, 'dist', 'src', 'functions'), { recursive: true });
    writeFileSync(join(stale, 'dist', 'src', 'functions', 'retired-function.js'), "require('@azure/functions').app.http('retired-function', { handler: async () => ({ status: 410 }) });\n");
    mkdirSync(join(stale, 'node_modules', 'left-over'), { recursive: true });
    writeFileSync(join(stale, 'node_modules', 'left-over', 'index.js'), '');

    const again = azdPackage(clone);

    expect([...again.zipped].sort()).toEqual([...fresh.zipped].sort());
  }, 600_000);

  it('stops before anything is zipped when the source does not type-check: esbuild bundles it, azd\'s build (tsc) refuses it', () => {
    writeFileSync(join(clone, 'src', 'type-error.ts'), "export const notANumber: number = 'text';\n");
    try {
      expect(() => azdPackage(clone)).toThrow(/npm run build failed[\s\S]*TS2322/);
    } finally {
      rmSync(join(clone, 'src', 'type-error.ts'));
    }
  }, 600_000);
});
