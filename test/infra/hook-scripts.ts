import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import type { SystemTool } from '../helpers/system-tools';
import { describeWithTool } from '../helpers/system-tools';
import type { ArmTemplate } from './bicep-cli';
import { compileMain, INFRA_DIR } from './bicep-cli';

/** azd sets these in every hook's environment besides the Bicep outputs. */
const AZD_BUILT_INS = ['AZURE_SUBSCRIPTION_ID'];

/** The two twins of a hook azure.yaml runs: posix under /bin/sh (dash on Debian), windows under pwsh. */
export interface HookTwin {
  readonly title: string;
  readonly shell: 'dash' | 'pwsh';
  readonly args: (tool: SystemTool) => [string, string[]];
}

/** infra/hooks/<name>.sh and <name>.ps1. */
export function hookTwins(name: string): HookTwin[] {
  return [
    { title: `${name}.sh under dash`, shell: 'dash', args: (tool) => [tool.path, [hookPath(name, 'sh')]] },
    { title: `${name}.ps1 under pwsh`, shell: 'pwsh', args: (tool) => [tool.path, ['-NoLogo', '-NoProfile', '-NonInteractive', '-File', hookPath(name, 'ps1')]] },
  ];
}

function hookPath(name: string, extension: 'sh' | 'ps1'): string {
  return join(INFRA_DIR, 'hooks', `${name}.${extension}`);
}

/** What a hook run against the fake az did. */
export interface FakeAzRun {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
  /** The arguments of each az call, one string a call. */
  readonly calls: string[];
}

/** A hook twin run against a stand-in for the Azure CLI. */
export interface FakeAz {
  /** The test's folder: the fake `az`, its log, anything else the test keeps there. */
  dir(): string;
  /** $FAKE_AZ_LOG, where the fake writes each call's arguments. */
  log(): string;
  /** Runs the twin with `env` (an undefined value removes a variable). */
  run(env: Record<string, string | undefined>): FakeAzRun;
}

/** A folder holding `fakeAz` as the only `az` on PATH, made before each test and removed after it. */
export function withFakeAz(twin: HookTwin, tool: SystemTool, fakeAz: string): FakeAz {
  let dir = '';
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'hook-'));
    writeFileSync(join(dir, 'az'), fakeAz);
    chmodSync(join(dir, 'az'), 0o755);
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const log = () => join(dir, 'calls.log');
  const run = (env: Record<string, string | undefined>): FakeAzRun => {
    writeFileSync(log(), '');
    const merged: Record<string, string> = { PATH: `${dir}:/usr/bin:/bin`, HOME: dir, POWERSHELL_TELEMETRY_OPTOUT: '1', FAKE_AZ_LOG: log() };
    for (const [name, value] of Object.entries(env)) {
      if (value === undefined) delete merged[name];
      else merged[name] = value;
    }
    const [command, args] = twin.args(tool);
    const result = spawnSync(command, args, { env: merged, encoding: 'utf8', timeout: 60_000 });
    if (result.error) throw result.error;
    return { status: result.status, stdout: result.stdout, stderr: result.stderr, calls: readFileSync(log(), 'utf8').split('\n').filter(Boolean) };
  };
  return { dir: () => dir, log, run };
}

/**
 * The checks a hook makes before it calls Azure, each ending the run with a message: a missing azd
 * value (`azdValue` unset), a retry setting that is not a number, az not logged in.
 */
export function itChecksItsInputsFirst(runHook: (env: Record<string, string | undefined>) => FakeAzRun, inputs: { readonly azdValue: string; readonly retrySetting: string }): void {
  it('fails before calling Azure when an azd output is missing, a retry setting is not a number, or az is not logged in', () => {
    const missing = runHook({ [inputs.azdValue]: undefined });
    expect(missing.status).not.toBe(0);
    expect(missing.stderr).toContain(`${inputs.azdValue} is not set`);
    expect(missing.calls).toEqual([]);

    const badRetry = runHook({ [inputs.retrySetting]: 'soon' });
    expect(badRetry.status).not.toBe(0);
    expect(badRetry.stderr).toContain('must be whole numbers');
    expect(badRetry.calls).toEqual([]);

    const loggedOut = runHook({ FAKE_AZ_ACCOUNT_RC: '1' });
    expect(loggedOut.status).not.toBe(0);
    expect(loggedOut.stderr).toContain('az login');
    expect(loggedOut.calls).toEqual([expect.stringMatching(/^account show /)]);
  });
}

/**
 * The checks on a hook's source: the sh twin parses as POSIX sh and passes shellcheck, both twins
 * require the same azd values, and those are Bicep outputs or azd built-ins.
 */
export function describeHookSource(name: string): void {
  const sh = hookPath(name, 'sh');
  describe(`${name}.sh as source`, () => {
    it('parses as POSIX sh', () => {
      expect(spawnSync('sh', ['-n', sh], { encoding: 'utf8' }).status).toBe(0);
    });

    describeWithTool('shellcheck', `${name}.sh through shellcheck`, (shellcheck) => {
      it('has no finding at any severity', () => {
        const result = spawnSync(shellcheck.path, ['--external-sources', '--shell=sh', '--severity=style', sh], { encoding: 'utf8' });
        expect(result.stdout).toBe('');
        expect(result.status).toBe(0);
      });
    });

    it('reads the same azd values as its PowerShell twin', () => {
      expect(shellReads(name).length).toBeGreaterThan(3);
      expect(powershellReads(name)).toEqual(shellReads(name));
    });

    describeWithTool('bicep', `${name}.sh and the Bicep outputs`, (bicep) => {
      let template: ArmTemplate;
      beforeAll(async () => {
        ({ template } = await compileMain(bicep));
      }, 120_000);

      it('reads only Bicep outputs and azd built-ins', () => {
        expect(shellReads(name).filter((variable) => !(variable in template.outputs) && !AZD_BUILT_INS.includes(variable))).toEqual([]);
      });
    });
  });
}

/** The azd environment values the sh twin requires (its `require_azd_values …` line). */
function shellReads(name: string): string[] {
  return /^require_azd_values ((?:[^\n]*\\\n)*[^\n]*)$/m.exec(readFileSync(hookPath(name, 'sh'), 'utf8'))?.[1]?.split(/[\s\\]+/).filter(Boolean) ?? [];
}

/** The azd environment values the ps1 twin requires (its `Get-AzdValues @(…)`). */
function powershellReads(name: string): string[] {
  return [...(/Get-AzdValues @\(([\s\S]*?)\)/.exec(readFileSync(hookPath(name, 'ps1'), 'utf8'))?.[1] ?? '').matchAll(/'([A-Z_]+)'/g)].map((match) => match[1] ?? '');
}
