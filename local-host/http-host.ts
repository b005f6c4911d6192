import { createHash, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { format } from 'node:util';

import type { Cookie, EffectiveFunctionOptions, FunctionInput, FunctionOutput } from '@azure/functions';
import { HttpRequest, HttpResponse, InvocationContext } from '@azure/functions';

import type { LogSink } from './log';
import { consoleSink, describeError, redactingSink } from './log';
import type { FunctionRegistration, HookRegistration, HttpFunction } from './registry';
import { httpFunctions, triggerOf } from './registry';
import type { RouteTemplate } from './routes';
import { compareRanks, compileRoute } from './routes';

/** The host's FUNCTIONS_REQUEST_BODY_SIZE_LIMIT default: 100 MiB. */
export const DEFAULT_MAX_REQUEST_BODY_BYTES = 100 * 1024 * 1024;

export interface StartFunctionsHostOptions {
  /** What the app registered (see `captureFunctionApp`); only HTTP-triggered functions are served. */
  readonly registrations: readonly FunctionRegistration[];
  /** `app.hook.appStart` callbacks run before the first request, `appTerminate` ones on close(). */
  readonly hooks?: readonly HookRegistration[];
  /** Default 127.0.0.1. */
  readonly host?: string;
  /** Default 0: a free port. */
  readonly port?: number;
  /** The key `function` routes require (header `x-functions-key` or query `code`); default: a random one. */
  readonly functionKey?: string;
  /** The host's master key: the only key `admin` routes take, and taken by `function` routes too; default: a random one. */
  readonly masterKey?: string;
  /** Default `api`, like host.json's `extensions.http.routePrefix`. */
  readonly routePrefix?: string;
  /** Bigger request bodies get 413; default 100 MiB. */
  readonly maxRequestBodyBytes?: number;
  /** Request lines and the functions' own logs; secrets are redacted before they get here. Default: console. */
  readonly log?: LogSink;
  /** Passed to the hooks as `functionAppDirectory`; default the current directory. */
  readonly functionAppDirectory?: string;
  /**
   * Serves `POST /runtime/webhooks/blobs?functionName=Host.Functions.<name>&code=<key>`, where Event
   * Grid delivers blob events for `source: 'EventGrid'` blob triggers (see blob-trigger.ts).
   */
  readonly blobWebhook?: (functionName: string, eventType: string | undefined, body: unknown) => Promise<{ status: number; body?: unknown }>;
}

export interface RunningFunctionsHost {
  /** `http://host:port`, without the route prefix. */
  readonly url: string;
  readonly port: number;
  readonly functionKey: string;
  readonly masterKey: string;
  readonly functions: readonly HttpFunction[];
  /** Stops accepting requests, drops open connections and runs the appTerminate hooks. */
  close(): Promise<void>;
}

interface Route {
  readonly fn: HttpFunction;
  readonly template: RouteTemplate;
}

/** The response side both `HttpResponse` classes share (the app may load its own copy of the library). */
interface ResponseLike {
  readonly status: number;
  readonly headers: Headers;
  readonly body: ReadableStream<unknown> | null;
  readonly cookies?: readonly Cookie[];
}

/**
 * Serves the app's HTTP functions at `/<routePrefix>/<route>` over loopback, the way the Functions
 * host does for `func start`: route templates, method matching, function keys, a body cap, and
 * a fresh `InvocationContext` per request.
 */
export async function startFunctionsHost(options: StartFunctionsHostOptions): Promise<RunningFunctionsHost> {
  const log = redactingSink(options.log ?? consoleSink);
  const functionKey = options.functionKey ?? randomBytes(24).toString('base64url');
  const masterKey = options.masterKey ?? randomBytes(24).toString('base64url');
  const expectedKeyDigest = digest(functionKey);
  const masterKeyDigest = digest(masterKey);
  const maxBodyBytes = options.maxRequestBodyBytes ?? DEFAULT_MAX_REQUEST_BODY_BYTES;
  const prefix = (options.routePrefix ?? 'api').replace(/^\/+|\/+$/g, '');
  const functions = httpFunctions(options.registrations);
  const routes: Route[] = functions
    .map((fn) => ({ fn, template: compileRoute(fn.route) }))
    .sort((a, b) => compareRanks(a.template.rank, b.template.rank));
  const hooks = options.hooks ?? [];
  const hookContext = { hookData: {}, appHookData: {}, functionAppDirectory: options.functionAppDirectory ?? process.cwd() };

  for (const hook of hooks) {
    if (hook.hookName === 'appStart') await hook.callback({ ...hookContext, hookData: {} });
    else if (hook.hookName !== 'appTerminate') log(`[host] warning: ${hook.hookName} hooks are not run by the local host.`);
  }

  const isMasterKey = (candidate: string | undefined): boolean =>
    candidate !== undefined && candidate !== '' && timingSafeEqual(digest(candidate), masterKeyDigest);
  // As the real host: the master key is an admin key and opens every route.
  const keyMatches = (candidate: string | undefined): boolean =>
    candidate !== undefined && candidate !== '' && (timingSafeEqual(digest(candidate), expectedKeyDigest) || isMasterKey(candidate));

  const server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      log(`[host] error: request handling failed: ${describeError(error)}`);
      if (!res.headersSent) sendJson(res, 500, 'InternalError', 'The local host failed to handle the request.');
      else res.destroy();
    });
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const started = performance.now();
    const method = (req.method ?? 'GET').toUpperCase();
    const url = new URL(req.url ?? '/', `http://${req.headers.host ?? 'localhost'}`);
    const logRequest = (extra = ''): void => {
      const ms = Math.round(performance.now() - started);
      log(`${method} ${url.pathname}${url.search} ${res.statusCode} ${ms}ms${extra}`);
    };

    if (url.pathname.toLowerCase() === '/runtime/webhooks/blobs' && options.blobWebhook) {
      if (method !== 'POST' || !keyMatches(url.searchParams.get('code') ?? headerValue(req, 'x-functions-key'))) {
        res.statusCode = method === 'POST' ? 401 : 405;
        res.end();
        return logRequest(' blob webhook');
      }
      const body = await readBody(req, maxBodyBytes);
      let events: unknown;
      try {
        events = body === 'too-large' ? undefined : (JSON.parse(Buffer.from(body).toString('utf8')) as unknown);
      } catch {
        events = undefined;
      }
      if (events === undefined) {
        sendJson(res, 400, 'InvalidEvents', 'The body must be a JSON array of Event Grid events.');
        return logRequest(' blob webhook');
      }
      const answer = await options.blobWebhook(url.searchParams.get('functionName') ?? '', headerValue(req, 'aeg-event-type'), events);
      res.statusCode = answer.status;
      if (answer.body === undefined) res.end();
      else {
        res.setHeader('content-type', 'application/json; charset=utf-8');
        res.end(JSON.stringify(answer.body));
      }
      return logRequest(' blob webhook');
    }

    const routePath = stripPrefix(url.pathname, prefix);
    const matches = routePath === undefined ? [] : routes.flatMap((route) => withParams(route, routePath));
    if (matches.length === 0) {
      sendJson(res, 404, 'NotFound', `No function serves ${url.pathname}.`);
      return logRequest();
    }
    const match = matches.find(({ route }) => route.fn.methods.length === 0 || route.fn.methods.includes(method));
    if (match === undefined) {
      const allowed = [...new Set(matches.flatMap(({ route }) => route.fn.methods))].sort();
      res.setHeader('allow', allowed.join(', '));
      sendJson(res, 405, 'MethodNotAllowed', `${method} is not allowed on ${url.pathname}; use ${allowed.join(' or ')}.`);
      return logRequest();
    }
    const { fn } = match.route;

    const key = headerValue(req, 'x-functions-key') ?? url.searchParams.get('code') ?? undefined;
    if (fn.authLevel !== 'anonymous' && !(fn.authLevel === 'admin' ? isMasterKey(key) : keyMatches(key))) {
      // The real host answers a missing or wrong key with an empty 401.
      res.statusCode = 401;
      res.end();
      return logRequest(` ${fn.name}`);
    }

    const body = await readBody(req, maxBodyBytes);
    if (body === 'too-large') {
      res.setHeader('connection', 'close');
      sendJson(res, 413, 'RequestEntityTooLarge', `The request body is larger than ${maxBodyBytes} bytes.`);
      // Stop listening to a client that keeps sending; Node discards what is already in flight.
      res.once('finish', () => setTimeout(() => req.destroy(), 1_000).unref());
      return logRequest(` ${fn.name}`);
    }

    const invocationId = randomUUID();
    const request = new HttpRequest({
      method,
      url: url.toString(),
      headers: requestHeaders(req),
      params: match.params,
      ...(body.byteLength > 0 ? { body: { bytes: body } } : {}),
    });
    const context = new InvocationContext({
      invocationId,
      functionName: fn.name,
      logHandler: (level, ...args) => {
        for (const line of format(...args).split('\n')) log(`[${fn.name}] ${level}: ${line}`);
      },
      options: effectiveOptions(fn.registration),
    });

    let response: ResponseLike;
    try {
      response = toResponse(await fn.handler(request, context));
    } catch (error: unknown) {
      log(`[${fn.name}] error: invocation ${invocationId} failed: ${describeError(error)}`);
      sendJson(res, 500, 'InternalError', `The function failed; see the host log for invocation ${invocationId}.`);
      return logRequest(` ${fn.name} invocation=${invocationId}`);
    }

    try {
      await writeResponse(res, response, method === 'HEAD');
    } catch (error: unknown) {
      log(`[${fn.name}] error: invocation ${invocationId}: writing the response failed: ${describeError(error)}`);
      if (!res.headersSent) sendJson(res, 500, 'InternalError', `The function's response could not be sent (invocation ${invocationId}).`);
      else res.destroy();
    }
    logRequest(` ${fn.name} invocation=${invocationId}`);
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: options.host ?? '127.0.0.1', port: options.port ?? 0 }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port, address } = server.address() as AddressInfo;
  const urlHost = address === '0.0.0.0' || address === '::' ? '127.0.0.1' : address.includes(':') ? `[${address}]` : address;

  let closing: Promise<void> | undefined;
  return {
    url: `http://${urlHost}:${port}`,
    port,
    functionKey,
    masterKey,
    functions,
    close() {
      closing ??= (async () => {
        await new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeAllConnections();
        });
        for (const hook of hooks) {
          if (hook.hookName === 'appTerminate') await hook.callback({ ...hookContext, hookData: {} });
        }
      })();
      return closing;
    },
  };
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}

function stripPrefix(pathname: string, prefix: string): string | undefined {
  if (prefix === '') return pathname;
  const lowerPath = pathname.toLowerCase();
  const lowerPrefix = `/${prefix.toLowerCase()}`;
  if (lowerPath === lowerPrefix || lowerPath === `${lowerPrefix}/`) return '/';
  return lowerPath.startsWith(`${lowerPrefix}/`) ? pathname.slice(lowerPrefix.length) : undefined;
}

function withParams(route: Route, path: string): { route: Route; params: Record<string, string> }[] {
  const params = route.template.match(path);
  return params === undefined ? [] : [{ route, params }];
}

function headerValue(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

// Hop-by-hop headers describe our socket, not the request the function sees.
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'proxy-connection', 'te', 'trailer']);

function requestHeaders(req: IncomingMessage): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(req.headersDistinct)) {
    if (value === undefined || HOP_BY_HOP.has(name)) continue;
    headers[name] = value.join(name === 'cookie' ? '; ' : ', ');
  }
  return headers;
}

/** Reads the whole body, or stops at `maxBytes` (checked against content-length first, then as it streams). */
async function readBody(req: IncomingMessage, maxBytes: number): Promise<Uint8Array | 'too-large'> {
  const declared = Number(headerValue(req, 'content-length'));
  if (Number.isFinite(declared) && declared > maxBytes) return 'too-large';
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of req) {
    const buffer = Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk));
    total += buffer.byteLength;
    if (total > maxBytes) {
      req.pause();
      return 'too-large';
    }
    chunks.push(buffer);
  }
  return chunks.length === 1 && chunks[0] !== undefined ? chunks[0] : Buffer.concat(chunks, total);
}

export function effectiveOptions(registration: FunctionRegistration): Partial<EffectiveFunctionOptions> {
  const trigger = triggerOf(registration);
  const extraInputs: FunctionInput[] = [];
  const extraOutputs: FunctionOutput[] = [];
  let returnBinding: FunctionOutput | undefined;
  for (const [name, binding] of Object.entries(registration.bindings)) {
    if (name === trigger.name) continue;
    if (name === '$return') returnBinding = { ...binding, name };
    else if (binding.direction === 'in') extraInputs.push({ ...binding, name });
    else if (binding.direction === 'out') extraOutputs.push({ ...binding, name });
  }
  return {
    trigger: { ...trigger.binding, name: trigger.name },
    ...(returnBinding === undefined ? {} : { return: returnBinding }),
    extraInputs,
    extraOutputs,
  };
}

function isResponseLike(value: object): value is ResponseLike {
  const headers: unknown = Reflect.get(value, 'headers');
  return (
    typeof Reflect.get(value, 'status') === 'number' &&
    typeof Reflect.get(value, 'arrayBuffer') === 'function' &&
    typeof headers === 'object' &&
    headers !== null &&
    typeof Reflect.get(headers, 'entries') === 'function'
  );
}

/** What the worker does with a handler's result: an HttpResponse as is, anything else as HttpResponseInit. */
function toResponse(result: unknown): ResponseLike {
  if (result === undefined || result === null) return new HttpResponse({ status: 204 });
  if (typeof result !== 'object') {
    throw new TypeError('The HTTP response must be an object with optional properties "body", "status", "headers", and "cookies".');
  }
  if (result instanceof HttpResponse || isResponseLike(result)) return result;
  // Same conversion as the worker's toRpcHttp: any other object is an HttpResponseInit; the constructor checks it.
  return new HttpResponse(result);
}

async function writeResponse(res: ServerResponse, response: ResponseLike, headOnly: boolean): Promise<void> {
  res.statusCode = response.status;
  const setCookies: string[] = [];
  for (const [name, value] of response.headers.entries()) {
    if (name === 'set-cookie') setCookies.push(value);
    else res.setHeader(name, value);
  }
  setCookies.push(...(response.cookies ?? []).map(serializeCookie));
  if (setCookies.length > 0) res.setHeader('set-cookie', setCookies);

  const body = response.body;
  if (body === null || headOnly) {
    await body?.cancel();
    res.end();
    return;
  }
  await pipeline(Readable.fromWeb(body), res);
}

function serializeCookie(cookie: Cookie): string {
  const parts = [`${cookie.name}=${cookie.value}`];
  if (cookie.domain !== undefined) parts.push(`Domain=${cookie.domain}`);
  if (cookie.path !== undefined) parts.push(`Path=${cookie.path}`);
  if (cookie.expires !== undefined) parts.push(`Expires=${new Date(cookie.expires).toUTCString()}`);
  if (cookie.maxAge !== undefined) parts.push(`Max-Age=${cookie.maxAge}`);
  if (cookie.secure === true) parts.push('Secure');
  if (cookie.httpOnly === true) parts.push('HttpOnly');
  if (cookie.sameSite !== undefined) parts.push(`SameSite=${cookie.sameSite}`);
  return parts.join('; ');
}

function sendJson(res: ServerResponse, status: number, code: string, message: string): void {
  const body = JSON.stringify({ error: { code, message } });
  res.statusCode = status;
  res.setHeader('content-type', 'application/json; charset=utf-8');
  res.setHeader('content-length', Buffer.byteLength(body));
  res.end(body);
}
