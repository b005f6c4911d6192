import { inspect } from 'node:util';

/** Where the local host's lines go: one call per line, no trailing newline. */
export type LogSink = (line: string) => void;

// Query values and connection-string parts that grant access: function keys (`code=`), SAS
// signatures (`sig=`) and storage account keys. They never reach a log line.
const SECRET_QUERY = /([?&;\s"'(]|^)(code|sig|token)=([^&\s"';#)]+)/gi;
const SECRET_SETTING = /\b(AccountKey|SharedAccessKey)=([^;\s"']+)/gi;

export function redactSecrets(text: string): string {
  return text.replace(SECRET_QUERY, '$1$2=REDACTED').replace(SECRET_SETTING, '$1=REDACTED');
}

/** A sink that redacts before it writes. */
export function redactingSink(sink: LogSink): LogSink {
  return (line) => sink(redactSecrets(line));
}

export const consoleSink: LogSink = (line) => console.log(line);

/** Formats an error for one log line: its stack when it has one, its causes after it. */
export function describeError(error: unknown): string {
  const parts: string[] = [];
  let current: unknown = error;
  for (let depth = 0; current !== undefined && depth < 5; depth++) {
    parts.push(current instanceof Error ? (current.stack ?? `${current.name}: ${current.message}`) : inspect(current));
    current = current instanceof Error ? current.cause : undefined;
  }
  return parts.join('\n  caused by: ');
}
