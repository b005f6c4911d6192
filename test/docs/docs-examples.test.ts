import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { DEFAULT_AZURITE_PORTS, DEFAULT_EMULATOR_PORT, DEFAULT_HTTP_PORT } from '../../local-host/settings';
import type { NpmStartProcess, StackPorts } from '../helpers/npm-start';
import { buildOnce, freeStackPorts, PROJECT_ROOT, startLikeNpmStart } from '../helpers/npm-start';
import type { Example } from './markdown-examples';
import { compareJson, examplesOf, findExpectedLines } from './markdown-examples';
import { ShellSession } from './shell-session';

// The README and docs/*.md run as written: every shell and js block of a page, in order, in one
// shell, against a stack started like `npm start` (on free ports), each checked against what the
// page says it prints. The convention is in CONTRIBUTING.md and test/docs/markdown-examples.ts.

const PAGES = ['README.md', ...readdirSync(join(PROJECT_ROOT, 'docs')).filter((name) => name.endsWith('.md')).sort().map((name) => `docs/${name}`)];
const BLOCK_TIMEOUT_MS = 120_000;

// The tools the examples use besides node and npm. Without them the examples cannot run; CI has them.
const missingTools = ['bash', 'curl'].filter((tool) => spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0);
const canRun = missingTools.length === 0 || process.env['CI'] === 'true';
if (!canRun) console.log(`skipping the docs examples test: ${missingTools.join(' and ')} not found`);

/** The stack runs on free ports; its output reads as if it ran on the defaults the docs show. */
function asDocumented(text: string, ports: StackPorts): string {
  const documented = new Map([
    [ports.http, DEFAULT_HTTP_PORT],
    [ports.emulator, DEFAULT_EMULATOR_PORT],
    [ports.blob, DEFAULT_AZURITE_PORTS.blob],
    [ports.queue, DEFAULT_AZURITE_PORTS.queue],
    [ports.table, DEFAULT_AZURITE_PORTS.table],
  ]);
  return text.replace(/(localhost|127\.0\.0\.1):(\d+)/g, (match, host: string, port: string) => {
    const shown = documented.get(Number(port));
    return shown === undefined ? match : `${host}:${shown}`;
  });
}

function title(page: string, example: Example): string {
  if (example.kind === 'not-run') return `${page}:${example.line} (not run: ${example.reason})`;
  const first = example.source.split('\n').find((line) => line.trim() !== '' && !/^\s*(#|\/\/)/.test(line)) ?? '';
  return `${page}:${example.line} ${first.trim().slice(0, 70)}`;
}

(canRun ? describe : describe.skip)('the docs, run as written', () => {
  let stack: NpmStartProcess | undefined;
  let ports: StackPorts;
  let stateDir: string;

  beforeAll(async () => {
    await buildOnce();
    const free = await freeStackPorts();
    ports = free.ports;
    stateDir = mkdtempSync(join(tmpdir(), 'docs-test-state-'));
    // The budget the README's "Set a budget" section starts npm start with.
    const budgets = JSON.stringify([{ caller: 'user:intern-*', daily: { images: 1 } }]);
    stack = await startLikeNpmStart({ env: { ...free.env, LOCAL_STATE_DIR: stateDir, AZURITE_DATA: 'memory', BUDGETS: budgets } });
  }, 180_000);

  afterAll(async () => {
    await stack?.stop();
    rmSync(stateDir, { recursive: true, force: true });
  });

  describe.each(PAGES)('%s', (page) => {
    let examples: Example[];
    let conventionError: string | undefined;
    try {
      examples = examplesOf(readFileSync(join(PROJECT_ROOT, page), 'utf8'), page);
    } catch (error: unknown) {
      examples = [];
      conventionError = error instanceof Error ? error.message : String(error);
    }

    let session: ShellSession | undefined;
    let scratch: string;

    beforeAll(() => {
      // A folder inside the project (npm finds the project from there, as from any of its folders)
      // with the samples at hand, so that what the examples save does not land in the checkout.
      const cache = join(PROJECT_ROOT, 'node_modules', '.cache', 'docs-test');
      mkdirSync(cache, { recursive: true });
      scratch = mkdtempSync(join(cache, 'run-'));
      symlinkSync(join(PROJECT_ROOT, 'samples'), join(scratch, 'samples'), 'dir');
      const env: NodeJS.ProcessEnv = { ...process.env, LOCAL_STATE_DIR: stateDir };
      // What the docs define must come from the docs.
      for (const name of ['APP', 'KEY', 'MASTER_KEY', 'AZURE_STORAGE_CONNECTION_STRING']) delete env[name];
      session = new ShellSession(scratch, env);
    });

    afterAll(async () => {
      await session?.close();
      rmSync(scratch, { recursive: true, force: true });
    });

    if (conventionError !== undefined) {
      it(`${page} follows the examples convention`, () => {
        throw new Error(conventionError);
      });
    }

    for (const example of examples) {
      if (example.kind === 'not-run') {
        it.skip(title(page, example), () => undefined);
        continue;
      }
      it(
        title(page, example),
        async () => {
          const where = `${page}:${example.line}`;
          const run = await (session as ShellSession).run(example.source, example.language, BLOCK_TIMEOUT_MS);
          const stdout = asDocumented(run.stdout, ports);
          const report = `\n--- stdout\n${stdout}\n--- stderr\n${asDocumented(run.stderr, ports)}\n--- npm start (last lines)\n${(stack?.output() ?? '').split('\n').slice(-15).join('\n')}`;
          if (!run.ok) throw new Error(`${where} failed: ${run.failure ?? ''}${report}`);
          const missing = findExpectedLines(example.expectedLines, stdout);
          if (missing !== undefined) throw new Error(`${where} does not print what it says: ${missing}${report}`);
          if (example.expectedJson) {
            let answer: unknown;
            try {
              answer = JSON.parse(stdout);
            } catch {
              throw new Error(`${where} is followed by a JSON answer (line ${example.expectedJson.line}), but it printed something else.${report}`);
            }
            const differences = compareJson(example.expectedJson.value, answer);
            if (differences.length > 0) throw new Error(`The answer shown at ${page}:${example.expectedJson.line} is not what ${where} answers:\n  ${differences.join('\n  ')}${report}`);
          }
        },
        BLOCK_TIMEOUT_MS + 10_000,
      );
    }
  });
});
