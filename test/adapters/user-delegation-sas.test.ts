import type { TokenCredential } from '@azure/identity';
import type { StoragePipelineOptions } from '@azure/storage-blob';
import { BlobServiceClient } from '@azure/storage-blob';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, request } from 'undici';

import type { RunningAzurite } from '../../local-host/azurite';
import { startAzurite } from '../../local-host/azurite';
import { BlobImageStore } from '../../src/adapters/blob-image-store';
import { UserDelegationSasSigner } from '../../src/adapters/blob-sas';
import type { Clock } from '../../src/domain/ports';
import { makePng } from '../helpers/images';

// The managed-identity path as it runs in Azure: blobs written with an Entra ID token and links signed
// with a user-delegation key. Azurite does this over HTTPS with `--oauth basic`, which checks a
// token's claims but not its signature, so an unsigned token with the right claims stands in for one.

const TENANT = '00000000-0000-0000-0000-000000000001';
// Azurite 3.35 does not know the SDK's newest SAS version; Azure does, so the app leaves it unset.
const AZURITE_SAS_VERSION = '2025-11-05';

function unsignedStorageToken(): string {
  const part = (value: object | string) => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');
  const now = Math.floor(Date.now() / 1000);
  const claims = {
    aud: 'https://storage.azure.com',
    iss: `https://sts.windows.net/${TENANT}/`,
    iat: now - 60,
    nbf: now - 60,
    exp: now + 3600,
    oid: '00000000-0000-0000-0000-0000000000aa',
    tid: TENANT,
  };
  return [part({ alg: 'RS256', typ: 'JWT' }), part(claims), part('unsigned')].join('.');
}

const tokenCredential: TokenCredential = {
  getToken: () => Promise.resolve({ token: unsignedStorageToken(), expiresOnTimestamp: Date.now() + 3_600_000 }),
};

describe('user-delegation SAS links against Azurite with OAuth', () => {
  // Moved forward between links: a signer that fetched a key per link would show a new key start.
  let clockOffsetInMs = 0;
  const clock: Clock = { now: () => new Date(Date.now() + clockOffsetInMs) };
  let certificateDir: string;
  let azurite: RunningAzurite | undefined;
  let trustingAgent: Agent;
  let store: BlobImageStore;

  beforeAll(async () => {
    certificateDir = mkdtempSync(join(tmpdir(), 'ud-sas-'));
    const certPath = join(certificateDir, 'cert.pem');
    const keyPath = join(certificateDir, 'key.pem');
    execFileSync('openssl', [
      'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1',
      '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost', '-keyout', keyPath, '-out', certPath,
    ], { stdio: 'ignore' });
    const ca = readFileSync(certPath);
    trustingAgent = new Agent({ connect: { ca } });

    azurite = await startAzurite({ tls: { certPath, keyPath } });
    // `tlsOptions` reaches the HTTP client of the SDK's pipeline; the typings do not list it.
    const service = new BlobServiceClient(azurite.blobEndpoint, tokenCredential, { tlsOptions: { ca } } as StoragePipelineOptions);
    const container = service.getContainerClient('images');
    await container.create();
    store = new BlobImageStore({
      container,
      sasSigner: new UserDelegationSasSigner(service, clock, { sasVersion: AZURITE_SAS_VERSION }),
      sasLifetimeInMs: 60 * 60_000,
      clock,
    });
  });

  afterAll(async () => {
    await trustingAgent?.close();
    await azurite?.stop();
    rmSync(certificateDir, { recursive: true, force: true });
  });

  async function storeImage(name: string, bytes: Buffer): Promise<string> {
    const staged = store.stageImage(name, { keepBytes: false });
    await staged.write(bytes);
    await staged.commit({ metadata: { requestid: name } });
    return (await store.createReadLink(name)).url;
  }

  it('writes with a token and signs read-only links with one cached delegation key', async () => {
    const first = makePng(64, 32, [10, 20, 30]);
    const second = makePng(32, 64, [200, 100, 0]);

    const firstUrl = await storeImage('r1/0.png', first);
    clockOffsetInMs = 90_000;
    const secondUrl = await storeImage('r2/0.png', second);

    for (const [url, bytes] of [[firstUrl, first], [secondUrl, second]] as const) {
      const response = await request(url, { dispatcher: trustingAgent });
      expect(response.statusCode).toBe(200);
      expect(Buffer.from(await response.body.arrayBuffer()).equals(bytes)).toBe(true);
      const query = new URL(url).searchParams;
      expect(query.get('sp')).toBe('r');
      expect(query.get('spr')).toBe('https');
      expect(query.get('skoid')).toBe('00000000-0000-0000-0000-0000000000aa');
      expect(query.has('sig')).toBe(true);
    }
    const keyStart = (url: string) => new URL(url).searchParams.get('skt');
    expect(keyStart(firstUrl)).not.toBeNull();
    expect(keyStart(secondUrl)).toBe(keyStart(firstUrl));
    expect(new URL(secondUrl).searchParams.get('st')).not.toBe(new URL(firstUrl).searchParams.get('st'));
  });

  it('refuses a link that was tampered with or points elsewhere', async () => {
    const url = new URL(await storeImage('r3/0.png', makePng(8, 8)));
    await storeImage('r4/0.png', makePng(8, 8));

    const widened = new URL(url);
    widened.searchParams.set('sp', 'rw');
    const otherBlob = new URL(url.href.replace('/r3/', '/r4/'));
    const write = await request(url, { method: 'PUT', dispatcher: trustingAgent, headers: { 'x-ms-blob-type': 'BlockBlob' }, body: 'x' });

    for (const target of [widened, otherBlob]) {
      const response = await request(target, { dispatcher: trustingAgent });
      await response.body.dump();
      expect(response.statusCode).toBe(403);
    }
    await write.body.dump();
    expect(write.statusCode).toBe(403);
  });
});
