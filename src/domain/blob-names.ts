import { ValidationError } from './errors';

/**
 * The one check for blob names that come from outside: inbox events, ticket references, JSON blob
 * references, and every name an adapter is asked to read or write. The storage SDK builds a URL from
 * the name and resolves `.` and `..` in it, so `../jobs/x` would address another container; Blob
 * Storage also treats `\` as `/` and drops a trailing dot. Such names are refused, never normalised:
 * a name that means something else than it says is not one we act on.
 */

/** Azure's limits: 1,024 characters and 254 path segments. */
export const MAX_BLOB_NAME_LENGTH = 1024;
export const MAX_BLOB_NAME_SEGMENTS = 254;

// C0 and C1 control characters: line breaks and escapes have no business in a blob name or a log line.
const CONTROL_CHARACTERS = /[\u0000-\u001f\u007f-\u009f]/;
// Half a surrogate pair cannot be percent-encoded into a URL.
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** Why `name` is not a plain blob name, or undefined when it is one. The reason never repeats the name. */
export function blobNameProblem(name: string): string | undefined {
  if (name.length === 0) return 'is empty';
  if (name.length > MAX_BLOB_NAME_LENGTH) return `is longer than ${MAX_BLOB_NAME_LENGTH} characters`;
  if (name.includes('\\')) return 'contains a backslash';
  if (CONTROL_CHARACTERS.test(name)) return 'contains a control character';
  if (LONE_SURROGATE.test(name)) return 'is not well-formed Unicode';
  const segments = name.split('/');
  if (segments.length > MAX_BLOB_NAME_SEGMENTS) return `has more than ${MAX_BLOB_NAME_SEGMENTS} path segments`;
  if (segments.some((segment) => segment === '' || segment === '.' || segment === '..')) return "has an empty, '.' or '..' path segment";
  if (name.endsWith('.')) return 'ends with a dot';
  return undefined;
}

/** Throws 400 `InvalidBlobName` (or `code`) naming `target` when `name` is not a plain blob name. */
export function assertValidBlobName(name: string, target: string, code = 'InvalidBlobName'): void {
  const problem = blobNameProblem(name);
  if (problem !== undefined) {
    throw new ValidationError(`${target} is not a valid blob name: it ${problem}. Use '/'-separated names without '.' or '..' segments.`, { code, target });
  }
}
