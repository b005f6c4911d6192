/**
 * A Blob Storage endpoint that accepts every upload and keeps nothing: each PUT body is read to its
 * end and answered the way the service answers (201 with an ETag), every read finds nothing. The
 * latency scenarios run against it so that their rows measure our layer, not Azurite's single thread
 * writing gigabytes to disk. Links signed for it lead nowhere; the tests check links, not the bench.
 */
import { createHash, randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer } from 'node:http';

export interface RunningNullBlobServer {
  /** e.g. http://127.0.0.1:PORT/devstoreaccount1: the account's blob endpoint, for a connection string. */
  readonly blobEndpoint: string;
  close(): Promise<void>;
}

const API_VERSION = '2025-01-05';

function serviceHeaders(): Record<string, string> {
  return {
    'x-ms-request-id': randomUUID(),
    'x-ms-version': API_VERSION,
    date: new Date().toUTCString(),
  };
}

async function drain(request: IncomingMessage): Promise<Buffer | undefined> {
  // A block is hashed like the service would check its Content-MD5; anything else only counted.
  const wantsMd5 = request.headers['content-md5'] !== undefined;
  const hash = wantsMd5 ? createHash('md5') : undefined;
  for await (const chunk of request) hash?.update(chunk as Buffer);
  return hash?.digest();
}

async function handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
  const method = request.method ?? 'GET';
  const query = new URL(request.url ?? '/', 'http://null.invalid').searchParams;
  if (method === 'PUT' || method === 'POST') {
    const md5 = await drain(request);
    const headers: Record<string, string> = {
      ...serviceHeaders(),
      etag: `"0x${randomUUID().replace(/-/g, '').slice(0, 16).toUpperCase()}"`,
      'last-modified': new Date().toUTCString(),
      'x-ms-request-server-encrypted': 'true',
      'content-length': '0',
    };
    if (md5) headers['content-md5'] = md5.toString('base64');
    response.writeHead(201, headers).end();
    return;
  }
  await drain(request);
  if (method === 'DELETE') {
    response.writeHead(202, { ...serviceHeaders(), 'content-length': '0' }).end();
    return;
  }
  if (query.get('restype') === 'container' && !query.has('comp')) {
    // Container properties: the app's health check asks for them.
    response.writeHead(200, { ...serviceHeaders(), etag: '"0x1"', 'last-modified': new Date(0).toUTCString(), 'content-length': '0' }).end();
    return;
  }
  const body = '<?xml version="1.0" encoding="utf-8"?><Error><Code>BlobNotFound</Code><Message>The null blob endpoint keeps nothing.</Message></Error>';
  response
    .writeHead(404, { ...serviceHeaders(), 'x-ms-error-code': 'BlobNotFound', 'content-type': 'application/xml', 'content-length': String(Buffer.byteLength(body)) })
    .end(method === 'HEAD' ? undefined : body);
}

export async function startNullBlobServer(options: { host?: string; port?: number; accountName: string }): Promise<RunningNullBlobServer> {
  const server = createServer((request, response) => {
    handle(request, response).catch(() => response.destroy());
  });
  const host = options.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => resolve());
  });
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('The null blob endpoint is not listening on a TCP port.');
  return {
    blobEndpoint: `http://${host}:${address.port}/${options.accountName}`,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        server.closeAllConnections();
      }),
  };
}
