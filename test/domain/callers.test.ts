import { callerMatches, inboxCaller, userCaller } from '../../src/domain/callers';

describe('callerMatches', () => {
  it('matches exact ids case-insensitively and * as any run of characters, nothing else as a pattern', () => {
    expect(callerMatches('Alice@Contoso.com', 'alice@contoso.com')).toBe(true);
    expect(callerMatches('*@contoso.com', 'bob@contoso.com')).toBe(true);
    expect(callerMatches('*@contoso.com', 'bob@contoso.com.evil')).toBe(false);
    expect(callerMatches('user:*', 'user:')).toBe(true);
    expect(callerMatches('user:a.c', 'user:abc')).toBe(false);
    expect(callerMatches('*', 'anything at all\nreally')).toBe(true);
  });
});

describe('caller ids', () => {
  it('prefix what a caller says about itself, so that it never passes for a signed-in principal', () => {
    expect(userCaller('alice@contoso.com').id).toBe('user:alice@contoso.com');
    expect(inboxCaller('team-a')).toEqual({ id: 'inbox:team-a', source: 'inbox' });
    expect(inboxCaller('')).toEqual({ id: 'inbox', source: 'inbox' });
    expect(userCaller('x'.repeat(1000)).id).toHaveLength(256);
  });
});
