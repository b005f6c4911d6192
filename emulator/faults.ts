/**
 * Scripted failures: the fault type shared by the in-process API and the control plane, and the
 * `[emulator:…]` directives that a prompt or an `x-emulator-fault` header may carry.
 */
import { z } from 'zod';

const retryDelay = z.number().int().min(0).max(24 * 60 * 60 * 1000);

export const emulatorFaultSchema = z.discriminatedUnion('kind', [
  z.strictObject({
    kind: z.literal('status'),
    status: z.union([z.literal(429), z.literal(500), z.literal(502), z.literal(503), z.literal(408)]),
    retryAfterSeconds: retryDelay.exactOptional(),
    retryAfterMs: retryDelay.exactOptional(),
  }),
  z.strictObject({ kind: z.literal('timeout') }),
  z.strictObject({ kind: z.literal('reset') }),
  z.strictObject({ kind: z.literal('truncate') }),
  z.strictObject({ kind: z.literal('malformed') }),
  z.strictObject({
    kind: z.literal('content-filter'),
    stage: z.enum(['input', 'output']),
    style: z.enum(['contentFilter', 'moderation_blocked', 'content_policy_violation']).exactOptional(),
  }),
  z.strictObject({ kind: z.literal('forbidden') }),
  // Any client error with the body given, for upstream answers the emulator has no rule for (a changed
  // parameter rule, a message carrying text that must not reach our callers).
  z.strictObject({
    kind: z.literal('error'),
    status: z.number().int().min(400).max(499),
    error: z.looseObject({
      code: z.string().nullable().exactOptional(),
      message: z.string(),
      param: z.string().nullable().exactOptional(),
      type: z.string().nullable().exactOptional(),
    }),
  }),
]);

/** A failure to inject into one API request. */
export type EmulatorFault = z.infer<typeof emulatorFaultSchema>;

export const emulatorFaultListSchema = z.array(emulatorFaultSchema);

/** What directives ask of one request: at most one fault, and optionally its own latency. */
export interface Directives {
  readonly fault?: EmulatorFault;
  readonly latencyMs?: number;
}

export class DirectiveError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DirectiveError';
  }
}

const DIRECTIVE_IN_TEXT = /\[emulator:([^\]]*)\]/gi;
const STATUS_WORDS: ReadonlyMap<string, 408 | 429 | 500 | 502 | 503> = new Map([
  ['408', 408],
  ['429', 429],
  ['500', 500],
  ['502', 502],
  ['503', 503],
]);

export const DIRECTIVE_HELP =
  "Known emulator directives: 429, 429:retry-after=SECONDS, 429:retry-after-ms=MS, 408, 500, 502, 503, timeout, reset, truncate, malformed, forbidden, filter-input, filter-output (optionally ':contentFilter', ':moderation_blocked' or ':content_policy_violation'), moderation-input, moderation-output, content-filter, slow=MS.";

/** Directives written as `[emulator:WORD]` anywhere in a prompt. */
export function directivesInPrompt(prompt: string): Directives {
  return combine([...prompt.matchAll(DIRECTIVE_IN_TEXT)].map((match) => (match[1] ?? '').trim()));
}

/** Directives in an `x-emulator-fault` header: the same words, bare or bracketed, separated by commas or spaces. */
export function directivesInHeader(value: string): Directives {
  const bracketed = [...value.matchAll(DIRECTIVE_IN_TEXT)].map((match) => (match[1] ?? '').trim());
  const words = bracketed.length > 0 ? bracketed : value.split(/[\s,]+/).filter((word) => word.length > 0);
  return combine(words);
}

function combine(words: readonly string[]): Directives {
  let fault: EmulatorFault | undefined;
  let latencyMs: number | undefined;
  for (const word of words) {
    const parsed = parseDirective(word);
    if ('latencyMs' in parsed) latencyMs = parsed.latencyMs;
    // The first fault wins, so a prompt reads left to right.
    else fault ??= parsed.fault;
  }
  return { ...(fault ? { fault } : {}), ...(latencyMs === undefined ? {} : { latencyMs }) };
}

function parseDirective(word: string): { fault: EmulatorFault } | { latencyMs: number } {
  const [head = '', ...options] = word.split(':');
  const name = head.toLowerCase();

  const slow = /^slow=(\d{1,7})$/.exec(name);
  if (slow) return { latencyMs: Number(slow[1]) };

  const status = STATUS_WORDS.get(name);
  if (status !== undefined) {
    let fault: EmulatorFault = { kind: 'status', status };
    for (const option of options) {
      const retry = /^retry-after(-ms)?=(\d{1,8})$/i.exec(option);
      if (!retry) throw new DirectiveError(`Unknown option '${option}' in emulator directive '${word}'. ${DIRECTIVE_HELP}`);
      fault = retry[1] ? { ...fault, retryAfterMs: Number(retry[2]) } : { ...fault, retryAfterSeconds: Number(retry[2]) };
    }
    return { fault };
  }

  const rejectOptions = (): void => {
    if (options.length > 0) throw new DirectiveError(`Emulator directive '${word}' takes no options. ${DIRECTIVE_HELP}`);
  };
  switch (name) {
    case 'timeout':
    case 'reset':
    case 'truncate':
    case 'malformed':
    case 'forbidden':
      rejectOptions();
      return { fault: { kind: name } };
    case 'filter-input':
    case 'filter-output':
    case 'content-filter':
      return { fault: contentFilterFault(name === 'filter-output' ? 'output' : 'input', options, word) };
    case 'moderation-input':
    case 'moderation-output':
      rejectOptions();
      return { fault: { kind: 'content-filter', stage: name === 'moderation-output' ? 'output' : 'input', style: 'moderation_blocked' } };
    default:
      throw new DirectiveError(`Unknown emulator directive '${word}'. ${DIRECTIVE_HELP}`);
  }
}

const filterStyle = z.enum(['contentFilter', 'moderation_blocked', 'content_policy_violation']);

function contentFilterFault(stage: 'input' | 'output', options: readonly string[], word: string): EmulatorFault {
  if (options.length === 0) return { kind: 'content-filter', stage };
  const style = filterStyle.safeParse(options[0]);
  if (options.length > 1 || !style.success) throw new DirectiveError(`Unknown content filter style in emulator directive '${word}'. ${DIRECTIVE_HELP}`);
  return { kind: 'content-filter', stage, style: style.data };
}
