import { lookup as dnsLookup } from 'node:dns/promises';
import type { LookupAddress, LookupOptions } from 'node:dns';
import { BlockList, isIP } from 'node:net';
import { Agent, request } from 'undici';

import type { CallbackPolicy, CallbackReply, CallbackSender } from '../domain/callbacks';
import { CallbackRefusedError, callbackUrlProblem, isLoopbackHostName } from '../domain/callbacks';

/**
 * Sends callbacks to URLs callers chose, which makes it the app's one door for server-side request
 * forgery. So: the URL must pass the policy (https, an allowed host); its host is resolved and every
 * address checked (no private, loopback, link-local or otherwise special range); and the connection
 * goes to exactly the addresses checked, because the check runs inside the socket's own lookup: a
 * name that resolves to a public address for a check and to 127.0.0.1 for the connection (DNS
 * rebinding) cannot slip through. No redirect is followed; every request has a deadline.
 */

/** Resolves a host name to every address it has. */
export type Resolver = (hostname: string) => Promise<readonly LookupAddress[]>;

const systemResolver: Resolver = (hostname) => dnsLookup(hostname, { all: true, verbatim: true });

// Everything that is not the public internet: RFC 6890 special-purpose ranges and their IPv6 kin.
// One list per family: a BlockList matches IPv4 addresses against IPv4-mapped IPv6 rules too.
const SPECIAL_IPV4 = new BlockList();
const SPECIAL_IPV6 = new BlockList();
for (const [network, prefix] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.0.2.0', 24],
  ['192.88.99.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['198.51.100.0', 24],
  ['203.0.113.0', 24],
  ['224.0.0.0', 4],
  ['240.0.0.0', 4],
] as const) {
  SPECIAL_IPV4.addSubnet(network, prefix, 'ipv4');
}
for (const [network, prefix] of [
  ['::', 128],
  ['::1', 128],
  // IPv4-mapped, NAT64 and 6to4 addresses carry an IPv4 address that could be any of the above.
  ['::ffff:0:0', 96],
  ['64:ff9b::', 96],
  ['2002::', 16],
  ['100::', 64],
  ['2001::', 23],
  ['2001:db8::', 32],
  ['fc00::', 7],
  ['fe80::', 10],
  ['fec0::', 10],
  ['ff00::', 8],
] as const) {
  SPECIAL_IPV6.addSubnet(network, prefix, 'ipv6');
}

const LOOPBACK = new BlockList();
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4');
LOOPBACK.addAddress('::1', 'ipv6');

const familyOf = (address: string): 'ipv4' | 'ipv6' => (isIP(address) === 6 ? 'ipv6' : 'ipv4');

/** Whether a connection to `address` is allowed: public addresses, and loopback ones only when asked for. */
export function addressAllowed(address: string, allowLoopback: boolean): boolean {
  const family = familyOf(address);
  if (allowLoopback && LOOPBACK.check(address, family)) return true;
  return !(family === 'ipv4' ? SPECIAL_IPV4 : SPECIAL_IPV6).check(address, family);
}

type LookupCallback = (error: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;

/**
 * A `lookup` for the sockets: resolves, refuses the whole name when any address is not allowed
 * (a mixed answer is what rebinding looks like), and hands the socket only the checked addresses.
 */
export function guardedLookup(resolve: Resolver, policy: Pick<CallbackPolicy, 'allowLoopback'>) {
  return (hostname: string, options: LookupOptions, callback: LookupCallback): void => {
    const allowLoopback = policy.allowLoopback && isLoopbackHostName(hostname);
    resolve(hostname).then(
      (addresses) => {
        const refused = addresses.find((entry) => !addressAllowed(entry.address, allowLoopback));
        const first = addresses[0];
        if (refused !== undefined) callback(new CallbackRefusedError(`${hostname} resolves to ${refused.address}, which callbacks may not reach`), '');
        else if (first === undefined) callback(Object.assign(new Error(`${hostname} has no address`), { code: 'ENOTFOUND' }), '');
        else if (options.all === true) callback(null, [...addresses]);
        else callback(null, first.address, first.family);
      },
      (error: unknown) => callback(error instanceof Error ? error : new Error(String(error)), ''),
    );
  };
}

export interface UndiciCallbackSenderOptions {
  readonly policy: CallbackPolicy;
  /** Default: the system resolver. */
  readonly resolve?: Resolver;
  /** Deadline of one attempt, connection to last byte; default 10 s. */
  readonly timeoutInMs?: number;
}

const MAX_REPLY_BYTES = 64 * 1024;

export class UndiciCallbackSender implements CallbackSender {
  private readonly agent: Agent;
  private readonly timeoutInMs: number;

  constructor(private readonly options: UndiciCallbackSenderOptions) {
    this.timeoutInMs = options.timeoutInMs ?? 10_000;
    this.agent = new Agent({
      connect: { lookup: guardedLookup(options.resolve ?? systemResolver, options.policy), timeout: this.timeoutInMs },
      headersTimeout: this.timeoutInMs,
      bodyTimeout: this.timeoutInMs,
      keepAliveTimeout: 10_000,
    });
  }

  async post(url: string, body: string, headers: Readonly<Record<string, string>>): Promise<CallbackReply> {
    // Checked again here, not only when the URL was accepted: the policy may have changed since.
    const problem = callbackUrlProblem(url, this.options.policy);
    if (problem !== undefined) throw new CallbackRefusedError(`the callback URL ${problem}`);
    const { hostname } = new URL(url);
    // A literal address is connected to without a lookup, so it is checked here.
    const literal = hostname.replace(/^\[|\]$/g, '');
    if (isIP(literal) !== 0 && !addressAllowed(literal, this.options.policy.allowLoopback && isLoopbackHostName(hostname))) {
      throw new CallbackRefusedError(`${literal} is an address callbacks may not reach`);
    }
    try {
      const response = await request(url, {
        method: 'POST',
        body,
        headers: { ...headers, 'user-agent': 'imagegen-functions-callbacks' },
        dispatcher: this.agent,
        signal: AbortSignal.timeout(this.timeoutInMs),
      });
      // The receiver's answer is not read beyond a little: only its status and Retry-After matter.
      await response.body.dump({ limit: MAX_REPLY_BYTES });
      return { status: response.statusCode, retryAfterSeconds: parseRetryAfter(response.headers['retry-after']) };
    } catch (error: unknown) {
      throw refusalIn(error) ?? error;
    }
  }

  close(): Promise<void> {
    return this.agent.close();
  }
}

/** The refusal somewhere in an error's causes (undici wraps socket errors). */
function refusalIn(error: unknown): CallbackRefusedError | undefined {
  for (let current = error, depth = 0; current instanceof Error && depth < 5; current = current.cause, depth++) {
    if (current instanceof CallbackRefusedError) return current;
  }
  return undefined;
}

function parseRetryAfter(value: string | string[] | undefined): number | undefined {
  const text = Array.isArray(value) ? value[0] : value;
  if (text === undefined) return undefined;
  if (/^\d{1,7}$/.test(text.trim())) return Number(text.trim());
  const date = Date.parse(text);
  return Number.isNaN(date) ? undefined : Math.max(0, Math.ceil((date - Date.now()) / 1000));
}
