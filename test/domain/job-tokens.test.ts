import { createHash } from 'node:crypto';

import { accessTokenHash, accessTokenMatches, deriveAccessToken, newAccessToken, reissueAccessToken } from '../../src/domain/job-tokens';

const CURRENT = 'current-secret-of-at-least-32-characters';
const PREVIOUS = 'previous-secret-of-at-least-32-characters';
const JOB_ID = '0f8fad5b-d9cb-469f-a165-70867728950e';

describe('job access tokens', () => {
  it('derives the same token for the same job, seed and secret, and another for another secret', () => {
    const token = deriveAccessToken(CURRENT, JOB_ID, 'order-42');
    expect(deriveAccessToken(CURRENT, JOB_ID, 'order-42')).toBe(token);
    expect(deriveAccessToken(PREVIOUS, JOB_ID, 'order-42')).not.toBe(token);
    expect(deriveAccessToken(CURRENT, JOB_ID, 'order-43')).not.toBe(token);
    // What the first version handed out, computable by anyone who knows the id and the key.
    expect(token).not.toBe(createHash('sha256').update(`job-access\u0000${JOB_ID}\u0000order-42`).digest('base64url'));
  });

  it('matches a token against its stored hash only', () => {
    const token = newAccessToken();
    expect(token).toMatch(/^[A-Za-z0-9_-]{32}$/);
    expect(accessTokenMatches(token, accessTokenHash(token))).toBe(true);
    expect(accessTokenMatches(newAccessToken(), accessTokenHash(token))).toBe(false);
    expect(accessTokenMatches(token, 'not-a-hash')).toBe(false);
  });

  it('hands a token out again with whichever configured secret made it, and not once that secret is gone', () => {
    const madeBefore = deriveAccessToken(PREVIOUS, JOB_ID, 'order-42');
    const hash = accessTokenHash(madeBefore);
    expect(reissueAccessToken([CURRENT, PREVIOUS], JOB_ID, 'order-42', hash)).toBe(madeBefore);
    expect(reissueAccessToken([CURRENT], JOB_ID, 'order-42', hash)).toBeUndefined();
    expect(reissueAccessToken([CURRENT, PREVIOUS], JOB_ID, 'another-key', hash)).toBeUndefined();
  });
});
