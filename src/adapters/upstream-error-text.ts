/**
 * What of an upstream error message may be shown: its words, not the addresses, keys, tokens or ids
 * in it (ours or the service's). Used for the caller (trimmed) and for the log (longer).
 */

const URL_LIKE = /\b[a-z][a-z0-9+.-]*:\/\/[^\s'"<>)]+/gi;
const BEARER = /\bBearer\s+[^\s'"]+/gi;
// `api-key: x`, `key=x`, `sig=x`, `token: x`, `password=x`, `Authorization: x`: the value goes.
const SECRET_PAIR = /\b(api[-_ ]?key|subscription[-_ ]?key|access[-_ ]?key|account[-_ ]?key|key|sig|signature|token|secret|password|authorization)(\s*[:=]\s*)(?!Bearer\b|\[)[^\s,;'"]+/gi;
// Keys, signatures, JWTs, request ids and the like: long runs without spaces that are not words.
const OPAQUE = /[A-Za-z0-9+/=_.-]{32,}/g;
const CONTROL = /[\u0000-\u001f\u007f-\u009f]+/g;

/** The message with URLs, credentials and long opaque strings replaced, `knownSecrets` first. */
export function redactUpstreamText(text: string, knownSecrets: readonly string[] = []): string {
  let redacted = text;
  for (const secret of knownSecrets) {
    if (secret.length >= 8) redacted = redacted.split(secret).join('[redacted]');
  }
  return redacted
    .replace(CONTROL, ' ')
    .replace(URL_LIKE, '[url]')
    .replace(BEARER, 'Bearer [redacted]')
    .replace(SECRET_PAIR, '$1$2[redacted]')
    .replace(OPAQUE, (run) => (/^[A-Za-z]+$/.test(run) ? run : '[redacted]'))
    .replace(/\s+/g, ' ')
    .trim();
}

/** At most `maxLength` characters, cut after a whole sentence where one ends late enough. */
export function trimMessage(text: string, maxLength: number): string {
  if (text.length <= maxLength) return text;
  const head = text.slice(0, maxLength);
  const sentenceEnd = Math.max(head.lastIndexOf('. '), head.lastIndexOf('? '), head.lastIndexOf('! '));
  return sentenceEnd >= maxLength / 3 ? head.slice(0, sentenceEnd + 1) : `${head.slice(0, maxLength - 1).trimEnd()}…`;
}
