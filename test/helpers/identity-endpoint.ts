import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A stand-in for the managed identity endpoint App Service and Azure Functions give an app: the
 * platform sets IDENTITY_ENDPOINT (a URL on the instance) and IDENTITY_HEADER (a secret the caller
 * must echo in `X-IDENTITY-HEADER`), and a GET with `api-version=2019-08-01`, `resource` and, for a
 * user-assigned identity, `client_id` answers an access token. MSAL (through @azure/identity's
 * ManagedIdentityCredential) picks this source when both variables are set. The tokens are
 * JWT-shaped with the resource as audience, which the Azure OpenAI emulator accepts as Entra tokens.
 */
export interface IdentityEndpoint {
  /** The environment the platform would set: IDENTITY_ENDPOINT and IDENTITY_HEADER. */
  readonly env: { readonly IDENTITY_ENDPOINT: string; readonly IDENTITY_HEADER: string };
  /** Every request, in order: its query and whether it carried the right header. */
  readonly requests: readonly IdentityRequest[];
  close(): Promise<void>;
}

export interface IdentityRequest {
  readonly method: string;
  readonly path: string;
  readonly query: Readonly<Record<string, string>>;
  readonly identityHeaderMatched: boolean;
}

export async function startIdentityEndpoint(options: { readonly clientId: string }): Promise<IdentityEndpoint> {
  const secret = randomBytes(16).toString('hex');
  const requests: IdentityRequest[] = [];
  const server = createServer((request, response) => {
    const url = new URL(request.url ?? '/', 'http://localhost');
    const query = Object.fromEntries(url.searchParams);
    const identityHeaderMatched = request.headers['x-identity-header'] === secret;
    requests.push({ method: request.method ?? '', path: url.pathname, query, identityHeaderMatched });
    const answer = (status: number, body: unknown) => {
      response.writeHead(status, { 'content-type': 'application/json' });
      response.end(JSON.stringify(body));
    };
    if (request.method !== 'GET' || url.pathname !== '/msi/token' || query['api-version'] !== '2019-08-01') {
      answer(400, { error: 'invalid_request', error_description: 'expected GET /msi/token?api-version=2019-08-01' });
    } else if (!identityHeaderMatched) {
      answer(401, { error: 'unauthorized_client', error_description: 'X-IDENTITY-HEADER is missing or wrong' });
    } else if (query['client_id'] !== options.clientId || !query['resource']) {
      answer(400, { error: 'invalid_request', error_description: 'unknown client_id or no resource' });
    } else {
      const expiresOn = Math.floor(Date.now() / 1000) + 3600;
      answer(200, { access_token: jwtShaped({ aud: query['resource'], exp: expiresOn }), expires_on: String(expiresOn), resource: query['resource'], token_type: 'Bearer', client_id: options.clientId });
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    env: { IDENTITY_ENDPOINT: `http://127.0.0.1:${port}/msi/token`, IDENTITY_HEADER: secret },
    requests,
    close: () =>
      new Promise((resolve, reject) => {
        server.closeAllConnections();
        server.close((error) => (error ? reject(error) : resolve()));
      }),
  };
}

function jwtShaped(claims: Record<string, unknown>): string {
  const part = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
  return `${part({ alg: 'none', typ: 'JWT' })}.${part(claims)}.${randomBytes(16).toString('base64url')}`;
}
