/**
 * Who may call (§2.3): an accepted `api-key` on every route; the same key as `Authorization: Bearer`
 * on the v1 and OpenAI routes; and, on every route, any JWT-shaped Entra ID token whose audience (when
 * it names one) is Cognitive Services or Azure AI and which has not expired. Signatures are not checked.
 */
import type { IncomingHttpHeaders } from 'node:http';

import { z } from 'zod';

import { invalidKey, invalidToken } from './errors';
import type { ApiFlavour } from './routes';

export interface AuthSettings {
  readonly apiKeys: ReadonlySet<string>;
  readonly acceptBearerTokens: boolean;
}

const TOKEN_AUDIENCES = new Set(['https://cognitiveservices.azure.com', 'https://ai.azure.com']);

const claimsSchema = z
  .object({
    aud: z.union([z.string(), z.array(z.string())]).optional(),
    exp: z.number().optional(),
  })
  .loose();

const BASE64URL_PART = /^[A-Za-z0-9_-]+={0,2}$/;

/** The claims of a token that looks like a JWT (three base64url parts, a JSON object in the middle), else undefined. */
export function readJwtClaims(token: string): z.infer<typeof claimsSchema> | undefined {
  const parts = token.split('.');
  if (parts.length !== 3 || !parts.every((part) => BASE64URL_PART.test(part))) return undefined;
  try {
    const parsed = claimsSchema.safeParse(JSON.parse(Buffer.from(parts[1] ?? '', 'base64url').toString('utf8')));
    return parsed.success ? parsed.data : undefined;
  } catch {
    // Not JSON inside: not a JWT.
    return undefined;
  }
}

function headerValue(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** Throws the service's 401 when the request's credentials would be refused. */
export function authenticate(headers: IncomingHttpHeaders, flavour: ApiFlavour, settings: AuthSettings, now = Date.now()): void {
  // `api-key` wins when present, as on Azure: a wrong key fails even next to a good token.
  const apiKey = headerValue(headers, 'api-key');
  if (apiKey !== undefined) {
    if (settings.apiKeys.has(apiKey)) return;
    throw invalidKey(flavour, apiKey);
  }

  const bearer = /^Bearer\s+(\S+)\s*$/i.exec(headerValue(headers, 'authorization') ?? '')?.[1];
  if (bearer === undefined) throw invalidKey(flavour, undefined);
  // Keys as bearer tokens are an OpenAI habit that Azure accepts on v1 only.
  if (flavour !== 'azure-deployment' && settings.apiKeys.has(bearer)) return;

  const claims = readJwtClaims(bearer);
  if (claims === undefined) throw flavour === 'azure-deployment' ? invalidToken() : invalidKey(flavour, bearer);
  if (!settings.acceptBearerTokens) throw invalidToken();
  const audiences = claims.aud === undefined ? [] : Array.isArray(claims.aud) ? claims.aud : [claims.aud];
  if (audiences.length > 0 && !audiences.some((audience) => TOKEN_AUDIENCES.has(audience.replace(/\/+$/, '')))) throw invalidToken();
  if (claims.exp !== undefined && claims.exp * 1000 <= now) throw invalidToken();
}

const REDACTED = '[redacted]';

/**
 * Headers as the request records keep them: without credentials. The records are served to anyone who
 * can reach the port, so `api-key` and `Authorization` keep only that they were sent (and the scheme).
 */
export function recordedHeaders(headers: IncomingHttpHeaders): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined) continue;
    out[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  if (out['api-key'] !== undefined) out['api-key'] = REDACTED;
  if (out.authorization !== undefined) {
    const scheme = /^(\S+)\s/.exec(out.authorization)?.[1];
    out.authorization = scheme === undefined ? REDACTED : `${scheme} ${REDACTED}`;
  }
  return out;
}
