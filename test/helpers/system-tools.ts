import { existsSync, readFileSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, join } from 'node:path';

/**
 * The programs some tests need beyond Node: a fresh machine with only Node skips those tests (one
 * line each says why), while CI (`CI=true`) requires them, so a missing tool fails there instead of
 * hiding a check. `.ci/run` installs them: `node infra/tools/install.mjs` for bicep and pwsh, apt
 * for shellcheck.
 */
export type SystemToolName = 'bicep' | 'pwsh' | 'shellcheck' | 'dash' | 'git';

export interface SystemTool {
  readonly name: SystemToolName;
  /** The executable to spawn. */
  readonly path: string;
}

const PROJECT_ROOT = join(__dirname, '..', '..');

const INSTALL_HINTS: Record<SystemToolName, string> = {
  bicep: 'install it with `node infra/tools/install.mjs bicep`',
  pwsh: 'install it with `node infra/tools/install.mjs pwsh`',
  shellcheck: 'install it with `apt-get install shellcheck` or `brew install shellcheck`',
  dash: 'install it with `apt-get install dash`',
  git: 'install it from https://git-scm.com',
};

export interface ToolSearch {
  /** PATH to search (default: this process's). */
  readonly path?: string;
  /** The home folder `az bicep` installs into (default: the user's). */
  readonly home?: string;
  /** The folder infra/tools/install.mjs installs into (default: the project's .tools). */
  readonly toolsDir?: string;
}

/**
 * Where a tool is found, in this order: the pinned copy in .tools/ (what CI installs), the
 * program on PATH, and for bicep the copy `az bicep install` keeps in ~/.azure/bin.
 */
export function findSystemTool(name: SystemToolName, search: ToolSearch = {}): SystemTool | undefined {
  const candidates = [
    ...(name === 'bicep' || name === 'pwsh' ? [pinnedToolPath(name, search.toolsDir ?? join(PROJECT_ROOT, '.tools'))] : []),
    ...onPath(name, search.path ?? process.env['PATH'] ?? ''),
    ...(name === 'bicep' ? [join(search.home ?? homedir(), '.azure', 'bin', executableName('bicep'))] : []),
  ];
  const path = candidates.find(isExecutableFile);
  return path === undefined ? undefined : { name, path };
}

/** The path infra/tools/install.mjs installs a pinned tool to (infra/tools/tools.json). */
export function pinnedToolPath(name: 'bicep' | 'pwsh', toolsDir: string): string {
  const pins = JSON.parse(readFileSync(join(PROJECT_ROOT, 'infra', 'tools', 'tools.json'), 'utf8')) as Record<string, { version: string }>;
  const version = pins[name]?.version;
  if (version === undefined) throw new Error(`infra/tools/tools.json pins no version of ${name}.`);
  return join(toolsDir, `${name}-${version}`, executableName(name));
}

/** Whether a missing tool fails the run (CI) or skips the tests that need it (anywhere else). */
export function toolsRequired(env: NodeJS.ProcessEnv = process.env): boolean {
  const ci = (env['CI'] ?? '').toLowerCase();
  return ci !== '' && ci !== 'false' && ci !== '0';
}

/**
 * `describe` for tests that need a system tool: `body` gets the tool. Without it the block is
 * skipped with one line on stderr saying why, or, under CI, replaced by one failing test.
 */
export function describeWithTool(name: SystemToolName, title: string, body: (tool: SystemTool) => void): void {
  const tool = findSystemTool(name);
  if (tool) {
    describe(title, () => body(tool));
    return;
  }
  const reason = `${name} is not installed (${INSTALL_HINTS[name]})`;
  if (toolsRequired()) {
    describe(title, () => {
      it(`needs ${name}`, () => {
        throw new Error(`${reason}; CI requires it.`);
      });
    });
    return;
  }
  process.stderr.write(`skipped: ${title}: ${reason}\n`);
  describe.skip(title, () => {
    it(`needs ${name}`, () => undefined);
  });
}

function executableName(name: string): string {
  return process.platform === 'win32' ? `${name}.exe` : name;
}

function onPath(name: string, path: string): string[] {
  return path
    .split(delimiter)
    .filter((dir) => dir !== '')
    .map((dir) => join(dir, executableName(name)));
}

function isExecutableFile(path: string): boolean {
  if (!existsSync(path)) return false;
  const stats = statSync(path);
  // Windows has no execute bit; elsewhere someone must be allowed to run it.
  return stats.isFile() && (process.platform === 'win32' || (stats.mode & 0o111) !== 0);
}
