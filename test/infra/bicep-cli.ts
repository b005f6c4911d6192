import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative, sep } from 'node:path';

import type { SystemTool } from '../helpers/system-tools';

export const PROJECT_ROOT = join(__dirname, '..', '..');
export const INFRA_DIR = join(PROJECT_ROOT, 'infra');
const MAIN_BICEP = join(INFRA_DIR, 'main.bicep');
const BICEP_CONFIG = join(PROJECT_ROOT, 'bicepconfig.json');
const CACHE_DIR = join(PROJECT_ROOT, 'node_modules', '.cache', 'bicep-results');

export function readInfra(relativePath: string): string {
  return readFileSync(join(INFRA_DIR, relativePath), 'utf8');
}

export interface BicepRun {
  readonly status: number | null;
  readonly stdout: string;
  /** Where Bicep writes its diagnostics: errors, warnings and linter findings. */
  readonly stderr: string;
}

/** Runs the Bicep CLI with the project's bicepconfig.json. */
function runBicep(bicep: SystemTool, args: readonly string[]): Promise<BicepRun> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(bicep.path, [...args, '--config', BICEP_CONFIG], { cwd: PROJECT_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (status) => resolvePromise({ status, stdout, stderr }));
  });
}

/** The ARM template main.bicep compiles to (languageVersion 2.0: resources keyed by symbolic name). */
export interface ArmTemplate {
  readonly parameters: Record<string, { type: string; defaultValue?: unknown; allowedValues?: unknown[]; minValue?: number; maxValue?: number; metadata?: Record<string, unknown> }>;
  readonly outputs: Record<string, { type: string; value: unknown }>;
  /** The user-defined types (infra/types.bicep) the parameters refer to. */
  readonly definitions?: Record<string, { type?: string; allowedValues?: unknown[] }>;
  readonly resources: Record<string, unknown>;
}

/**
 * What Bicep answers depends only on the CLI, the files under infra/, bicepconfig.json and the
 * question, so answers are kept under a hash of all of them: test files asking the same question,
 * and the second jest run of CI (Node 22), reuse them instead of starting the CLI again.
 */
async function cached<T>(bicep: SystemTool, question: unknown, ask: () => Promise<T>): Promise<T> {
  const key = createHash('sha256').update(inputsDigest(bicep)).update(JSON.stringify(question)).digest('hex');
  const file = join(CACHE_DIR, `${key}.json`);
  try {
    return JSON.parse(await readFile(file, 'utf8')) as T;
  } catch (error: unknown) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  const answer = await ask();
  await mkdir(CACHE_DIR, { recursive: true });
  // Written aside and renamed, so a parallel jest worker never reads half a file.
  const partial = `${file}.${process.pid}.partial`;
  await writeFile(partial, JSON.stringify(answer));
  await rename(partial, file);
  return answer;
}

function inputsDigest(bicep: SystemTool): string {
  const hash = createHash('sha256');
  const { size, mtimeMs } = statSync(bicep.path);
  hash.update(`${bicep.path}\0${size}\0${mtimeMs}\0${PROJECT_ROOT}\0`);
  const files = (dir: string): string[] =>
    readdirSync(dir, { withFileTypes: true })
      .sort((a, b) => a.name.localeCompare(b.name))
      .flatMap((entry) => (entry.isDirectory() ? files(join(dir, entry.name)) : [join(dir, entry.name)]));
  for (const file of [...files(INFRA_DIR), BICEP_CONFIG]) hash.update(`${relative(PROJECT_ROOT, file)}\0`).update(readFileSync(file)).update('\0');
  return hash.digest('hex');
}

/** `bicep lint` of every .bicep file under infra/. */
export function lintInfra(bicep: SystemTool): Promise<BicepRun> {
  return cached(bicep, ['lint'], () => runBicep(bicep, ['lint', '--pattern', 'infra/**/*.bicep']));
}

export async function compileMain(bicep: SystemTool): Promise<{ template: ArmTemplate; run: BicepRun }> {
  const run = await cached(bicep, ['build'], () => runBicep(bicep, ['build', MAIN_BICEP, '--stdout']));
  if (run.status !== 0) throw new Error(`bicep build infra/main.bicep failed:\n${run.stderr}`);
  return { template: JSON.parse(run.stdout) as ArmTemplate, run };
}

/** What azd knows about who runs it; it fills AZURE_PRINCIPAL_ID and AZURE_PRINCIPAL_TYPE from this, whatever the environment says. */
export interface SignedInPrincipal {
  readonly id: string;
  readonly type: 'User' | 'ServicePrincipal';
}

const DEVELOPER: SignedInPrincipal = { id: '7b3e0f4e-6a1d-4c55-9a62-0c8f3d2b1a90', type: 'User' };

/** An azd environment: the values `azd env set` stored, plus the signed-in principal. */
export interface AzdEnvironment {
  readonly values: Readonly<Record<string, string>>;
  readonly principal: SignedInPrincipal;
}

/** The environment `azd env new dev` + `azd env set AZURE_LOCATION eastus2` leaves, with `overrides` set on top. */
export function azdEnvironment(overrides: Readonly<Record<string, string>> = {}, principal: SignedInPrincipal = DEVELOPER): AzdEnvironment {
  return { values: { AZURE_ENV_NAME: 'dev', AZURE_LOCATION: 'eastus2', AZURE_SUBSCRIPTION_ID: SUBSCRIPTION_ID, ...overrides }, principal };
}

const SUBSCRIPTION_ID = '4f1c2d3e-5a6b-4c7d-8e9f-0a1b2c3d4e5f';
const TENANT_ID = '0d9e8f7a-6b5c-4d3e-2f1a-0b9c8d7e6f5a';

/** A parameter value azd sends: text, a number, or for an array or object parameter the JSON it parsed. */
export type ParameterValue = string | number | boolean | null | ParameterValue[] | { readonly [key: string]: ParameterValue };

/**
 * The parameter values azd sends for infra/main.parameters.json, following its Bicep provider
 * (cli/azd/pkg/infra/provisioning/bicep/bicep_provider.go, loadParameters): `${NAME}` and
 * `${NAME=default}` are replaced from the environment (the default when the value is empty),
 * AZURE_PRINCIPAL_ID/TYPE from the signed-in principal; a string left empty because a variable is
 * unset is not sent at all (the template default applies); numbers are sent as numbers; the text
 * of an array or object parameter is parsed as JSON, and text that is not JSON stops azd
 * (Azure/azure-dev#6694, azd 1.23.4).
 */
export function azdParameters(environment: AzdEnvironment, template: ArmTemplate): Record<string, ParameterValue> {
  const file = JSON.parse(readInfra('main.parameters.json')) as { parameters: Record<string, { value: unknown }> };
  const parameters: Record<string, ParameterValue> = {};
  for (const [name, { value }] of Object.entries(file.parameters)) {
    if (typeof value !== 'string') throw new Error(`main.parameters.json: ${name} is not a string; azd substitutes into strings`);
    let hasUnset = false;
    const substituted = value.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)(?:=([^}]*))?\}/g, (_, variable: string, fallback: string | undefined) => {
      if (variable === 'AZURE_PRINCIPAL_ID') return environment.principal.id;
      if (variable === 'AZURE_PRINCIPAL_TYPE') return environment.principal.type;
      const set = environment.values[variable];
      if (set === undefined) hasUnset = true;
      return set !== undefined && set !== '' ? set : (fallback ?? '');
    });
    if (substituted === '' && hasUnset) continue;
    const type = template.parameters[name]?.type;
    if (type === 'array' || type === 'object') {
      try {
        parameters[name] = JSON.parse(substituted) as ParameterValue;
      } catch {
        throw new Error(`azd stops: parameter '${name}' (${type}) is not valid JSON: '${substituted}'`);
      }
    } else {
      parameters[name] = type === 'int' && /^-?\d+$/.test(substituted) ? Number(substituted) : substituted;
    }
  }
  return parameters;
}

/** A .bicepparam file for main.bicep with these values. */
function bicepparamFile(parameters: Readonly<Record<string, ParameterValue>>, directory: string): string {
  const using = relative(directory, MAIN_BICEP).split(sep).join('/');
  return [`using '${using}'`, '', ...paramLines(parameters), ''].join('\n');
}

/** The `param` lines of a .bicepparam file; also what answers about it are cached under. */
function paramLines(parameters: Readonly<Record<string, ParameterValue>>): string[] {
  return Object.entries(parameters).map(([name, value]) => `param ${name} = ${bicepLiteral(value, '')}`);
}

/** A value written in Bicep: strings quoted and escaped, arrays and objects one item a line. */
function bicepLiteral(value: ParameterValue, indent: string): string {
  if (typeof value === 'string') return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "\\'").replace(/\$\{/g, '\\${')}'`;
  if (typeof value === 'number' || typeof value === 'boolean' || value === null) return String(value);
  const inner = `${indent}  `;
  if (Array.isArray(value)) return ['[', ...value.map((item) => `${inner}${bicepLiteral(item, inner)}`), `${indent}]`].join('\n');
  // The linter wants a key that is an identifier unquoted.
  const key = (name: string) => (/^[A-Za-z_][A-Za-z0-9_]*$/.test(name) ? name : bicepLiteral(name, inner));
  return ['{', ...Object.entries(value).map(([name, item]) => `${inner}${key(name)}: ${bicepLiteral(item, inner)}`), `${indent}}`].join('\n');
}

/** `bicep build-params` of the parameter values: the diagnostics, and the parameters it produced when it succeeded. */
export async function buildParams(bicep: SystemTool, parameters: Readonly<Record<string, ParameterValue>>): Promise<BicepRun> {
  return cached(bicep, ['build-params', paramLines(parameters)], () => withParamFile(parameters, (file) => runBicep(bicep, ['build-params', file, '--stdout'])));
}

/** The deployment `bicep snapshot` predicts: every resource with what is known before deploying, and the outputs. */
export interface DeploymentSnapshot {
  readonly predictedResources: PredictedResource[];
  readonly outputs: Record<string, unknown>;
  readonly diagnostics: unknown[];
}

export interface PredictedResource {
  readonly id: string;
  readonly type: string;
  readonly name: string;
  readonly apiVersion: string;
  readonly location?: string;
  readonly kind?: string;
  readonly sku?: Record<string, unknown>;
  readonly tags?: Record<string, string>;
  readonly identity?: Record<string, unknown>;
  readonly properties?: Record<string, unknown>;
}

export type SnapshotResult = { readonly ok: true; readonly snapshot: DeploymentSnapshot; readonly run: BicepRun } | { readonly ok: false; readonly run: BicepRun };

/**
 * `bicep snapshot` of main.bicep for these parameter values, as azd would deploy it: at
 * subscription scope, in the environment's AZURE_LOCATION, for a sample subscription and tenant.
 */
async function snapshot(bicep: SystemTool, parameters: Readonly<Record<string, ParameterValue>>, location: string): Promise<SnapshotResult> {
  return cached(bicep, ['snapshot', paramLines(parameters), location], () => takeSnapshot(bicep, parameters, location));
}

function takeSnapshot(bicep: SystemTool, parameters: Readonly<Record<string, ParameterValue>>, location: string): Promise<SnapshotResult> {
  return withParamFile(parameters, async (file) => {
    const run = await runBicep(bicep, [
      'snapshot',
      file,
      '--mode',
      'overwrite',
      '--subscription-id',
      SUBSCRIPTION_ID,
      '--tenant-id',
      TENANT_ID,
      '--location',
      location,
      '--deployment-name',
      'dev-provision',
    ]);
    if (run.status !== 0) return { ok: false, run };
    const text = await readFile(file.replace(/\.bicepparam$/, '.snapshot.json'), 'utf8');
    return { ok: true, snapshot: JSON.parse(text) as DeploymentSnapshot, run };
  });
}

/** azd's parameters for an environment, then the snapshot of the deployment they make. */
export async function snapshotFor(bicep: SystemTool, template: ArmTemplate, environment: AzdEnvironment): Promise<SnapshotResult> {
  return snapshot(bicep, azdParameters(environment, template), environment.values['AZURE_LOCATION'] ?? '');
}

async function withParamFile<T>(parameters: Readonly<Record<string, ParameterValue>>, use: (file: string) => Promise<T>): Promise<T> {
  const directory = await mkdtemp(join(tmpdir(), 'bicepparam-'));
  try {
    const file = join(directory, 'main.bicepparam');
    await writeFile(file, bicepparamFile(parameters, directory));
    return await use(file);
  } finally {
    await rm(directory, { recursive: true, force: true });
  }
}
