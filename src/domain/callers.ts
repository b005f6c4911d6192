/**
 * Who a request is charged to. The id is what reports group by and budgets match: a signed-in
 * principal's name as App Service Authentication gives it, or a prefixed name for weaker sources, so
 * that a `user` field or an inbox folder can never pass for a signed-in principal.
 */
export type CallerSource = 'principal' | 'user' | 'inbox' | 'default';

export interface Caller {
  readonly id: string;
  readonly source: CallerSource;
}

/** The most a caller id may hold; longer names are cut (a table key holds 1 KiB). */
const MAX_CALLER_ID_LENGTH = 256;

const bounded = (id: string) => id.slice(0, MAX_CALLER_ID_LENGTH);

export const principalCaller = (name: string): Caller => ({ id: bounded(name), source: 'principal' });
export const userCaller = (user: string): Caller => ({ id: bounded(`user:${user}`), source: 'user' });
export const inboxCaller = (folder: string): Caller => ({ id: bounded(folder === '' ? 'inbox' : `inbox:${folder}`), source: 'inbox' });
export const defaultCaller = (name: string): Caller => ({ id: bounded(name), source: 'default' });

/**
 * True when `id` matches `pattern`: the same text (case-insensitive), or a pattern whose `*` stands
 * for any run of characters (`user:*`, `*@contoso.com`, `*`).
 */
export function callerMatches(pattern: string, id: string): boolean {
  const expression = pattern
    .split('*')
    .map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
    .join('.*');
  return new RegExp(`^${expression}$`, 'is').test(id);
}
