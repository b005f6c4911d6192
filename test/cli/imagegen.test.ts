import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { decodePng } from '../../emulator/images/png';
import { RUNNING_STACK_FILE } from '../../local-host/running-stack';
import type { NpmStartProcess } from '../helpers/npm-start';
import { buildOnce, freeStackPorts, PROJECT_ROOT, startLikeNpmStart } from '../helpers/npm-start';

// `npm run imagegen`, the project CLI, as a user calls it: through npm, from a folder inside the
// project, against the stack npm start runs, which it finds by itself.

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function imagegen(args: readonly string[], options: { cwd?: string; env?: Record<string, string> } = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn('npm', ['run', '-s', 'imagegen', '--', ...args], { cwd: options.cwd ?? PROJECT_ROOT, env: { ...process.env, ...options.env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('npm run imagegen', () => {
  let stack: NpmStartProcess | undefined;
  let stateDir: string;
  let scratch: string;
  const env = () => ({ LOCAL_STATE_DIR: stateDir });

  beforeAll(async () => {
    await buildOnce();
    const { env: ports } = await freeStackPorts();
    stateDir = mkdtempSync(join(tmpdir(), 'imagegen-cli-state-'));
    scratch = mkdtempSync(join(tmpdir(), 'imagegen-cli-out-'));
    stack = await startLikeNpmStart({ env: { ...ports, LOCAL_STATE_DIR: stateDir, AZURITE_DATA: 'memory' } });
  }, 180_000);

  afterAll(async () => {
    await stack?.stop();
    for (const dir of [stateDir, scratch]) rmSync(dir, { recursive: true, force: true });
  });

  it('prints export lines that reach the running stack', async () => {
    const run = await imagegen(['env'], { env: env() });
    const exports = new Map([...run.stdout.matchAll(/^export (\w+)='([^']*)'$/gm)].map((match) => [match[1] ?? '', match[2] ?? '']));

    expect(run.code).toBe(0);
    expect([...exports.keys()]).toEqual(['APP', 'KEY', 'MASTER_KEY', 'AZURE_STORAGE_CONNECTION_STRING']);
    const health = await fetch(`${exports.get('APP') ?? ''}/api/health`);
    expect(health.status).toBe(200);
  });

  it("puts a file from a subfolder (paths are the caller's), waits for the edit and prints the manifest", async () => {
    const run = await imagegen(['put', '../samples/house.png', '--prompt', 'paint the front door red', '--quality', 'low', '--name', 'cli/house.png'], {
      cwd: join(PROJECT_ROOT, 'docs'),
      env: env(),
    });

    expect(run.code).toBe(0);
    expect(run.stderr).toMatch(/^uploaded inbox\/cli\/house\.png \(\d+ bytes, version .+\)$/m);
    expect(JSON.parse(run.stdout)).toMatchObject({ status: 'succeeded', source: { name: 'cli/house.png' }, images: [{ width: 256, height: 192 }] });
  });

  it('shows the manifest again, lists the job and the result, and downloads the edited image', async () => {
    const manifest = await imagegen(['manifest', 'cli/house.png'], { env: env() });
    const list = await imagegen(['list'], { env: env() });
    const saved = await imagegen(['download', 'cli/house.png', '--out', scratch], { env: env() });

    expect(JSON.parse(manifest.stdout)).toMatchObject({ status: 'succeeded' });
    expect(list.stdout).toMatch(/succeeded\s+edit\s+[0-9a-f-]{36}\s+→ outputs\/cli\/house\.png\/\w+\//);
    expect(list.stdout).toMatch(/outputs\/cli\/house\.png\/\w+\/\s+inbox edit succeeded, 1 image, \d+ tokens/);
    expect(saved.stdout).toMatch(/^saved .*house-edited-0\.png \(\d+ bytes\)$/m);
    const edited = await decodePng(readFileSync(join(scratch, 'house-edited-0.png')));
    expect([edited.width, edited.height]).toEqual([256, 192]);
  });

  it('says in one line that a blob to download does not exist', async () => {
    const run = await imagegen(['download', 'images/no-such-id/0.png', '--out', scratch], { env: env() });

    expect(run.code).toBe(1);
    expect(run.stderr.trim().split('\n')).toEqual(['imagegen: no such blob (check the container and the name).']);
  });

  it('answers a second put of the same file and request with the edit the first one made', async () => {
    const put = () => imagegen(['put', 'samples/house.jpg', '--prompt', 'paint the front door red', '--name', 'cli/twice.jpg', '--timeout', '15'], { env: env() });
    const first = await put();
    const second = await put();

    expect([first.code, second.code]).toEqual([0, 0]);
    expect(JSON.parse(second.stdout)).toEqual(JSON.parse(first.stdout));
  });

  it('ends a put whose edit failed with the failed manifest and a non-zero exit', async () => {
    const run = await imagegen(['put', 'samples/house.png', '--prompt', 'x', '--model', 'dall-e-3', '--name', 'cli/refused.png'], { env: env() });

    expect(run.code).toBe(1);
    expect(JSON.parse(run.stdout)).toMatchObject({ status: 'failed', error: { code: 'UnknownModel' } });
  });

  it('says how to start a stack when none runs, and when the one it knew has died', async () => {
    const empty = mkdtempSync(join(tmpdir(), 'imagegen-cli-none-'));
    try {
      const none = await imagegen(['list'], { env: { LOCAL_STATE_DIR: empty } });
      expect(none.code).toBe(1);
      expect(none.stderr).toMatch(/No local stack is running .* Start one with `npm start`/);

      const exited = spawn(process.execPath, ['-e', '']);
      const deadPid = await new Promise<number>((resolve) => exited.once('exit', () => resolve(exited.pid ?? 0)));
      const known = JSON.parse(readFileSync(join(stateDir, RUNNING_STACK_FILE), 'utf8')) as Record<string, unknown>;
      writeFileSync(join(empty, RUNNING_STACK_FILE), JSON.stringify({ ...known, pid: deadPid }));
      const dead = await imagegen(['list'], { env: { LOCAL_STATE_DIR: empty } });
      expect(dead.code).toBe(1);
      expect(dead.stderr).toMatch(new RegExp(`\\(pid ${deadPid}\\) is not running any more.*npm start`));
    } finally {
      rmSync(empty, { recursive: true, force: true });
    }
  });

  it('makes a mask, and refuses an area outside the image', async () => {
    const made = await imagegen(['mask', 'samples/house.png', '--area', '116,116,24,44', '--out', join(scratch, 'door.png')]);
    const outside = await imagegen(['mask', 'samples/house.png', '--area', '250,100,24,44', '--out', join(scratch, 'no.png')]);

    expect(made.code).toBe(0);
    const [mask, sample] = await Promise.all([decodePng(readFileSync(join(scratch, 'door.png'))), decodePng(readFileSync(join(PROJECT_ROOT, 'samples', 'door-mask.png')))]);
    expect(Buffer.from(mask.pixels).equals(Buffer.from(sample.pixels))).toBe(true);
    expect(outside.code).toBe(1);
    expect(outside.stderr).toContain('reaches outside the 256x192 image');
  });
});
