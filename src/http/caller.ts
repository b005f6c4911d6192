import type { HttpRequest, HttpResponseInit, InvocationContext } from '@azure/functions';
import { z } from 'zod';

import type { AppConfig } from '../config';
import type { Services } from '../services';
import type { Caller } from '../domain/callers';
import { defaultCaller, principalCaller, userCaller } from '../domain/callers';
import { AuthenticationError, ForbiddenError } from '../domain/errors';

/**
 * Who is calling, from what App Service Authentication (Easy Auth) puts in front of the app. The
 * platform strips these headers from what callers send and sets them itself, but only when it is on
 * for the app: otherwise anyone can send them. So they are read only when CALLER_AUTH says the
 * platform vouches for them, and refused (401) otherwise, rather than silently believed or dropped.
 *
 * The Functions host knows which function key a request used (it adds the key's name as a claim) and
 * hands its claims to the language worker, but the Node.js library does not pass them on to the
 * function: the key's name cannot be read here, so key callers are told apart by `user` alone.
 */
export interface SignedInPrincipal {
  readonly name: string;
  readonly id: string | undefined;
  readonly identityProvider: string | undefined;
  readonly roles: readonly string[];
}

const PRINCIPAL_HEADER_PREFIX = 'x-ms-client-principal';

// The claims document App Service Authentication sends in X-MS-CLIENT-PRINCIPAL (base64 JSON).
const claimsSchema = z.object({
  auth_typ: z.string().optional(),
  name_typ: z.string().optional(),
  role_typ: z.string().optional(),
  claims: z.array(z.object({ typ: z.string(), val: z.string() })),
});

const ROLE_CLAIMS = new Set(['roles', 'http://schemas.microsoft.com/ws/2008/06/identity/claims/role']);
const NAME_CLAIMS = ['name', 'preferred_username', 'upn', 'http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name', 'appid', 'azp'];

/** The signed-in principal, when the platform vouches for one; throws for sign-in headers it cannot vouch for. */
export function readPrincipal(request: HttpRequest, config: AppConfig): SignedInPrincipal | undefined {
  const sent = [...request.headers.keys()].filter((name) => name.toLowerCase().startsWith(PRINCIPAL_HEADER_PREFIX));
  if (config.callers.auth === 'key') {
    if (sent.length > 0) {
      throw new AuthenticationError(
        'UntrustedPrincipalHeaders',
        'This app does not take sign-in headers (X-MS-CLIENT-PRINCIPAL*) from callers: nothing in front of it vouches for them. Call it with a function key, without those headers.',
      );
    }
    return undefined;
  }
  const encoded = request.headers.get('x-ms-client-principal');
  if (encoded === null) {
    if (sent.length > 0) throw invalidPrincipal('X-MS-CLIENT-PRINCIPAL is missing while other sign-in headers are present.');
    return undefined;
  }
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(encoded, 'base64').toString('utf8'));
  } catch {
    throw invalidPrincipal('X-MS-CLIENT-PRINCIPAL is not base64-encoded JSON.');
  }
  const parsed = claimsSchema.safeParse(json);
  if (!parsed.success) throw invalidPrincipal('X-MS-CLIENT-PRINCIPAL does not carry a claims list.');
  const { claims } = parsed.data;
  const claim = (...types: string[]) => types.map((type) => claims.find((entry) => entry.typ === type)?.val).find((value) => value !== undefined && value !== '');
  const name = request.headers.get('x-ms-client-principal-name') ?? claim(...[parsed.data.name_typ ?? '', ...NAME_CLAIMS]);
  const id = request.headers.get('x-ms-client-principal-id') ?? claim('http://schemas.microsoft.com/identity/claims/objectidentifier', 'oid', 'sub');
  const displayName = name ?? id;
  if (displayName === undefined || displayName === '') throw invalidPrincipal('The signed-in principal has neither a name nor an id.');
  const roleTypes = new Set([...ROLE_CLAIMS, ...(parsed.data.role_typ ? [parsed.data.role_typ] : [])]);
  return {
    name: displayName,
    id: id ?? undefined,
    identityProvider: request.headers.get('x-ms-client-principal-idp') ?? parsed.data.auth_typ,
    roles: claims.filter((entry) => roleTypes.has(entry.typ)).map((entry) => entry.val),
  };
}

function invalidPrincipal(why: string): AuthenticationError {
  return new AuthenticationError('InvalidPrincipal', `${why} Sign in again; if it persists, the app's operator must check App Service Authentication.`);
}

/**
 * The caller a request is charged to: the signed-in principal, else the request's `user` field, else
 * the configured default. With CALLER_AUTH=entra a request must be signed in.
 */
export function callerOf(request: HttpRequest, user: string | undefined, config: AppConfig): Caller {
  const principal = readPrincipal(request, config);
  if (principal) return principalCaller(principal.name);
  if (config.callers.auth === 'entra') {
    throw new AuthenticationError('SignInRequired', 'Sign in with Microsoft Entra ID (an OAuth 2.0 bearer token for this app) to call it.');
  }
  return user !== undefined && user.trim() !== '' ? userCaller(user.trim()) : defaultCaller(config.callers.defaultCaller);
}

/**
 * Admin routes: with keys, the host already required the master key (authLevel admin); with
 * CALLER_AUTH=entra, the signed-in principal must hold the admin app role.
 */
export function assertAdmin(request: HttpRequest, config: AppConfig): void {
  const principal = readPrincipal(request, config);
  if (config.callers.auth !== 'entra') return;
  if (!principal) throw new AuthenticationError('SignInRequired', 'Sign in with Microsoft Entra ID to read usage.');
  if (!principal.roles.includes(config.callers.adminRole)) {
    throw new ForbiddenError('AdminRoleRequired', `Reading usage needs the app role '${config.callers.adminRole}'; ${principal.name} does not hold it.`);
  }
}

/**
 * For routes that take a function key but charge nothing (models, subscriptions): with
 * CALLER_AUTH=entra they are registered without a key, like the image routes, and need a sign-in.
 */
export function withSignIn(
  getServices: () => Promise<Services>,
  handler: (request: HttpRequest, context: InvocationContext) => Promise<HttpResponseInit>,
): (request: HttpRequest, context: InvocationContext) => Promise<HttpResponseInit> {
  return async (request, context) => {
    const { config } = await getServices();
    if (readPrincipal(request, config) === undefined && config.callers.auth === 'entra') {
      throw new AuthenticationError('SignInRequired', 'Sign in with Microsoft Entra ID (an OAuth 2.0 bearer token for this app) to call it.');
    }
    return handler(request, context);
  };
}
