import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * Job access tokens. A job's links carry its token, and the job keeps only the token's SHA-256, so
 * checking a link needs no secret. Ordinary jobs get a random token, shown once. A job that must hand
 * the same link out again (a replayed Idempotency-Key, a redelivered inbox upload) gets a token
 * derived with a server-side secret (HMAC-SHA256), so that nobody without the secret can compute it
 * from what is public (the job id is in every result link's path; keys are often guessable).
 */

/** 192 random bits. */
export const newAccessToken = (): string => randomBytes(24).toString('base64url');

export function deriveAccessToken(secret: string, jobId: string, seed: string): string {
  return createHmac('sha256', secret).update(`job-access\u0000${jobId}\u0000${seed}`).digest('base64url');
}

export const accessTokenHash = (token: string): string => createHash('sha256').update(token).digest('hex');

export function accessTokenMatches(token: string, hash: string): boolean {
  const left = Buffer.from(accessTokenHash(token));
  const right = Buffer.from(hash);
  return left.length === right.length && timingSafeEqual(left, right);
}

/**
 * The token a replay hands out again: derived with the first of `secrets` (current, then previous)
 * that reproduces the job's own token; undefined when the secret that made it has been retired.
 */
export function reissueAccessToken(secrets: readonly string[], jobId: string, seed: string, hash: string): string | undefined {
  return secrets.map((secret) => deriveAccessToken(secret, jobId, seed)).find((token) => accessTokenMatches(token, hash));
}
