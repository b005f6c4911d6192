import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

import { BlobServiceClient } from '@azure/storage-blob';

import { devStorageConnectionString } from '../../local-host/azurite';
import { getFreePort, isPortListening } from '../../local-host/ports';
import { markdownBlocks } from './markdown-examples';

// The Core Tools path (docs/local.md) cannot run here (no `func`), but its Azurite command can: run
// as written (plus free ports, so it never meets another Azurite), it must keep its files in .azurite/
// and send no telemetry.

function documentedAzuriteArguments(): string[] {
  const page = readFileSync(join(__dirname, '..', '..', 'docs', 'local.md'), 'utf8');
  const line = markdownBlocks(page)
    .flatMap((block) => block.lines)
    .find((candidate) => /^npx azurite\b/.test(candidate.trim()));
  if (line === undefined) throw new Error('docs/local.md shows no `npx azurite` command.');
  return line.trim().replace(/\s+#.*$/, '').split(/\s+/).slice(2);
}

describe('the Azurite command for Core Tools in docs/local.md', () => {
  const args = documentedAzuriteArguments();

  it('turns telemetry off', () => {
    expect(args).toContain('--disableTelemetry');
  });

  it('keeps every file it writes in .azurite/', async () => {
    const folder = mkdtempSync(join(tmpdir(), 'core-tools-azurite-'));
    const ports = [await getFreePort(), await getFreePort(), await getFreePort()];
    const entry = join(dirname(require.resolve('azurite/package.json')), 'dist', 'src', 'azurite.js');
    const azurite = spawn(process.execPath, [entry, ...args, '--blobPort', String(ports[0]), '--queuePort', String(ports[1]), '--tablePort', String(ports[2])], { cwd: folder, stdio: 'ignore' });
    try {
      const deadline = Date.now() + 30_000;
      while (!(await Promise.all(ports.map((port) => isPortListening(port)))).every(Boolean)) {
        if (azurite.exitCode !== null || Date.now() > deadline) throw new Error(`Azurite ${args.join(' ')} did not start.`);
        await sleep(100);
      }
      const endpoint = (port: number | undefined) => `http://127.0.0.1:${port ?? 0}/devstoreaccount1`;
      const storage = BlobServiceClient.fromConnectionString(devStorageConnectionString({ blobEndpoint: endpoint(ports[0]), queueEndpoint: endpoint(ports[1]), tableEndpoint: endpoint(ports[2]) }));
      await storage.getContainerClient('written').createIfNotExists();
      await storage.getContainerClient('written').getBlockBlobClient('a.txt').uploadData(Buffer.from('kept'));

      expect(readdirSync(folder)).toEqual(['.azurite']);
      expect(readdirSync(join(folder, '.azurite')).length).toBeGreaterThan(0);
    } finally {
      if (azurite.exitCode === null) {
        const exited = once(azurite, 'exit');
        azurite.kill('SIGTERM');
        await exited;
      }
      rmSync(folder, { recursive: true, force: true });
    }
  });
});
