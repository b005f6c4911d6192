import type { TokenCredential } from '@azure/identity';
import type { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Dispatcher } from 'undici';
import { request } from 'undici';
import { z } from 'zod';

import {
  ContentFilterError,
  UpstreamBadRequestError,
  UpstreamConfigurationError,
  UpstreamError,
  UpstreamThrottledError,
  UpstreamTimeoutError,
} from '../domain/errors';
import type {
  CallOptions,
  ImageByteWriter,
  ImageEditRequest,
  ImageGenerationRequest,
  ImageGenerationResult,
  ImageModelClient,
  ImageSink,
  UpstreamObservation,
} from '../domain/ports';
import { Base64StreamDecoder, ImagesResponseScanner, MalformedResponseError } from './images-response-scanner';
import { MultipartBody } from './multipart-body';
import { redactUpstreamText, trimMessage } from './upstream-error-text';

export type UpstreamAuth =
  | { readonly mode: 'key'; readonly apiKey: string }
  | { readonly mode: 'token'; readonly credential: TokenCredential; readonly scope: string };

export interface AzureOpenAIImagesClientOptions {
  readonly endpoint: string;
  readonly apiFlavor: 'deployment' | 'v1';
  readonly apiVersion: string;
  readonly auth: UpstreamAuth;
  /** Deadline for one whole call, retries and waits included. */
  readonly timeoutInMs: number;
  readonly maxRetries: number;
  readonly dispatcher?: Dispatcher | undefined;
  /** First backoff when the upstream gives no retry-after; doubles per attempt. */
  readonly minRetryDelayInMs?: number | undefined;
  /** Longest wait we accept from a retry-after before giving the 429 back to the caller instead. */
  readonly maxRetryDelayInMs?: number | undefined;
}

interface RequestBody {
  readonly contentType: string;
  readonly body: string | Readable;
  readonly contentLength?: number | undefined;
}

const RETRYABLE_STATUS = new Set([408, 429, 500, 502, 503, 504]);
const RETRYABLE_CONNECTION_CODES = new Set(['ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT', 'UND_ERR_SOCKET', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_CLOSED']);
const CONTENT_FILTER_CODES = new Set(['contentFilter', 'content_filter', 'moderation_blocked', 'content_policy_violation']);
const MAX_ERROR_BODY_BYTES = 64 * 1024;
// Enough for the upstream's parameter messages ("Invalid value: 'x'. Supported values are: ...").
const MAX_RELAYED_MESSAGE_LENGTH = 300;
const MAX_LOGGED_MESSAGE_LENGTH = 2_000;

const errorBodySchema = z
  .object({
    error: z
      .object({
        code: z.union([z.string(), z.number()]).nullish(),
        message: z.string().nullish(),
        param: z.string().nullish(),
        type: z.string().nullish(),
        inner_error: z.object({ code: z.string().nullish(), content_filter_results: z.record(z.string(), z.unknown()).nullish() }).loose().nullish(),
        moderation_details: z.object({ moderation_stage: z.string().nullish(), categories: z.array(z.unknown()).nullish() }).loose().nullish(),
      })
      .loose(),
  })
  .loose();
type UpstreamErrorBody = z.infer<typeof errorBodySchema>['error'];

const successSkeletonSchema = z.object({
  created: z.number(),
  data: z.array(z.object({ b64_json: z.string().optional(), revised_prompt: z.string().nullish() }).loose()).min(1),
  usage: z.record(z.string(), z.unknown()).optional(),
  size: z.string().optional(),
  quality: z.string().optional(),
  background: z.string().optional(),
  output_format: z.string().optional(),
});

/** Azure OpenAI images API over undici: both path flavours, key or Entra ID auth, deadline, polite retries. */
export class AzureOpenAIImagesClient implements ImageModelClient {
  private readonly minRetryDelayInMs: number;
  private readonly maxRetryDelayInMs: number;

  constructor(private readonly options: AzureOpenAIImagesClientOptions) {
    this.minRetryDelayInMs = options.minRetryDelayInMs ?? 500;
    this.maxRetryDelayInMs = options.maxRetryDelayInMs ?? 30_000;
  }

  async generateImages(imageRequest: ImageGenerationRequest, sink: ImageSink, callOptions: CallOptions = {}): Promise<ImageGenerationResult> {
    const body = JSON.stringify(toUpstreamBody(imageRequest, this.options.apiFlavor));
    return this.post(this.urlFor(imageRequest.deployment, 'generations'), () => ({ contentType: 'application/json', body }), sink, callOptions);
  }

  async editImages(imageRequest: ImageEditRequest, sink: ImageSink, callOptions: CallOptions = {}): Promise<ImageGenerationResult> {
    const form = toUpstreamForm(imageRequest, this.options.apiFlavor);
    return this.post(
      this.urlFor(imageRequest.deployment, 'edits'),
      () => ({ contentType: form.contentType, body: form.stream(), contentLength: form.length }),
      sink,
      callOptions,
    );
  }

  /** One POST with the deadline and polite retries; `body` is called once per attempt, so streamed bodies replay. */
  private async post(url: string, body: () => RequestBody, sink: ImageSink, callOptions: CallOptions): Promise<ImageGenerationResult> {
    const deadline = AbortSignal.timeout(this.options.timeoutInMs);
    const signal = callOptions.abortSignal ? AbortSignal.any([deadline, callOptions.abortSignal]) : deadline;
    const startedAt = Date.now();

    for (let attempt = 0; ; attempt++) {
      const retriesLeft = attempt < this.options.maxRetries;
      const auth = await this.authHeaders(signal);
      await callOptions.beforeUpstreamRequest?.();
      const payload = body();
      let response: Dispatcher.ResponseData;
      try {
        response = await request(url, {
          method: 'POST',
          ...(this.options.dispatcher ? { dispatcher: this.options.dispatcher } : {}),
          signal,
          headers: {
            ...auth,
            'content-type': payload.contentType,
            ...(payload.contentLength === undefined ? {} : { 'content-length': String(payload.contentLength) }),
            accept: 'application/json',
            'user-agent': 'imagegen-functions',
            ...(callOptions.requestId ? { 'x-ms-client-request-id': callOptions.requestId } : {}),
          },
          body: payload.body,
        });
      } catch (error: unknown) {
        if (typeof payload.body !== 'string') payload.body.destroy();
        this.throwIfAborted(deadline, callOptions.abortSignal, error);
        if (retriesLeft && isRetryableConnectionError(error)) {
          await this.wait(this.backoff(attempt), signal, deadline, callOptions.abortSignal);
          continue;
        }
        throw new UpstreamError('UpstreamUnavailable', 'Azure OpenAI could not be reached.', { cause: error });
      }

      callOptions.onUpstreamResponse?.(observationOf(response));
      if (response.statusCode === 200) {
        try {
          return await readImages(response, sink);
        } catch (error: unknown) {
          this.throwIfAborted(deadline, callOptions.abortSignal, error);
          throw error;
        }
      }

      const errorBody = await readErrorBody(response, signal);
      if (RETRYABLE_STATUS.has(response.statusCode)) {
        const asked = retryAfterInMs(response.headers);
        const delay = asked ?? this.backoff(attempt);
        const timeLeft = this.options.timeoutInMs - (Date.now() - startedAt);
        if (retriesLeft && delay <= this.maxRetryDelayInMs && delay < timeLeft) {
          await this.wait(delay, signal, deadline, callOptions.abortSignal);
          continue;
        }
        if (response.statusCode === 429) {
          throw new UpstreamThrottledError(
            'Azure OpenAI is throttling image requests for this deployment; retry after the time in Retry-After.',
            Math.max(1, Math.ceil((asked ?? this.minRetryDelayInMs) / 1000)),
          );
        }
      }
      throw mapErrorResponse(response.statusCode, errorBody, this.knownSecrets());
    }
  }

  /** Our own secrets, should the upstream ever quote them back. */
  private knownSecrets(): string[] {
    return this.options.auth.mode === 'key' ? [this.options.auth.apiKey] : [];
  }

  private urlFor(deployment: string, operation: 'generations' | 'edits'): string {
    const { endpoint, apiFlavor, apiVersion } = this.options;
    return apiFlavor === 'v1'
      ? `${endpoint}/openai/v1/images/${operation}`
      : `${endpoint}/openai/deployments/${encodeURIComponent(deployment)}/images/${operation}?api-version=${encodeURIComponent(apiVersion)}`;
  }

  private async authHeaders(abortSignal: AbortSignal): Promise<Record<string, string>> {
    const { auth } = this.options;
    if (auth.mode === 'key') return { 'api-key': auth.apiKey };
    let token;
    try {
      token = await auth.credential.getToken(auth.scope, { abortSignal });
    } catch (error: unknown) {
      throw new UpstreamConfigurationError(
        'UpstreamAuthenticationFailed',
        `Could not get an Entra ID token for ${auth.scope}; check the app's managed identity (AZURE_CLIENT_ID).`,
        error,
      );
    }
    if (!token) {
      throw new UpstreamConfigurationError('UpstreamAuthenticationFailed', `The credential returned no token for ${auth.scope}.`);
    }
    return { authorization: `Bearer ${token.token}` };
  }

  /** Exponential backoff with jitter, so that many instances throttled together do not retry together. */
  private backoff(attempt: number): number {
    return Math.min(this.maxRetryDelayInMs, this.minRetryDelayInMs * 2 ** attempt) * (0.8 + Math.random() * 0.4);
  }

  private async wait(delayInMs: number, signal: AbortSignal, deadline: AbortSignal, callerSignal: AbortSignal | undefined): Promise<void> {
    try {
      await sleep(delayInMs * (1 + Math.random() * 0.1), undefined, { signal });
    } catch (error: unknown) {
      this.throwIfAborted(deadline, callerSignal, error);
      throw error;
    }
  }

  private throwIfAborted(deadline: AbortSignal, callerSignal: AbortSignal | undefined, error: unknown): void {
    if (callerSignal?.aborted) throw callerSignal.reason ?? error;
    if (deadline.aborted) {
      throw new UpstreamTimeoutError(`Azure OpenAI did not finish within ${this.options.timeoutInMs} ms.`, error);
    }
  }
}

function toUpstreamBody(imageRequest: ImageGenerationRequest, apiFlavor: 'deployment' | 'v1'): Record<string, unknown> {
  const body: Record<string, unknown> = {
    prompt: imageRequest.prompt,
    n: imageRequest.n,
    // v1 routes by the body's model (the deployment name); the dated API routes by path and ignores it.
    model: apiFlavor === 'v1' ? imageRequest.deployment : imageRequest.model,
    size: imageRequest.size,
    quality: imageRequest.quality,
    output_format: imageRequest.outputFormat,
    output_compression: imageRequest.outputCompression,
    background: imageRequest.background,
    moderation: imageRequest.moderation,
    style: imageRequest.style,
    user: imageRequest.user,
  };
  // dall-e-3 answers with a URL unless asked otherwise; gpt-image models refuse the parameter.
  if (imageRequest.model === 'dall-e-3') body.response_format = 'b64_json';
  return body;
}

/**
 * The edit as the upstream (and the SDK) sends it: text fields, then one `image` part or repeated
 * `image[]` parts, then the mask; each file with its sniffed type and a name, since the service
 * refuses parts typed application/octet-stream.
 */
function toUpstreamForm(imageRequest: ImageEditRequest, apiFlavor: 'deployment' | 'v1'): MultipartBody {
  const values: [string, string | number | undefined][] = [
    ['prompt', imageRequest.prompt],
    ['n', imageRequest.n],
    ['model', apiFlavor === 'v1' ? imageRequest.deployment : imageRequest.model],
    ['size', imageRequest.size],
    ['quality', imageRequest.quality],
    ['output_format', imageRequest.outputFormat],
    ['output_compression', imageRequest.outputCompression],
    ['background', imageRequest.background],
    ['moderation', imageRequest.moderation],
    ['input_fidelity', imageRequest.inputFidelity],
    ['user', imageRequest.user],
  ];
  const fields = values.flatMap(([name, value]) => (value === undefined ? [] : [[name, String(value)] as const]));
  const imageField = imageRequest.images.length === 1 ? 'image' : 'image[]';
  const files = imageRequest.images.map((image) => ({ ...image, field: imageField }));
  if (imageRequest.mask) files.push({ ...imageRequest.mask, field: 'mask' });
  return new MultipartBody(fields, files);
}

async function readImages(response: Dispatcher.ResponseData, sink: ImageSink): Promise<ImageGenerationResult> {
  const scanner = new ImagesResponseScanner();
  const decoder = new Base64StreamDecoder();
  const writers = new Map<number, ImageByteWriter>();
  try {
    for await (const chunk of response.body) {
      for (const event of scanner.push(chunk as Buffer)) {
        if (event.kind === 'image-start') {
          writers.set(event.index, sink.openImage(event.index));
        } else if (event.kind === 'image-base64') {
          const bytes = decoder.push(event.data);
          // Awaited before the next push: the decoder reuses `bytes`, and a slow store slows the read.
          if (bytes.length > 0) await writers.get(event.index)?.write(bytes);
        } else {
          decoder.end();
          // The store can start uploading the image's tail now instead of after the whole response.
          await writers.get(event.index)?.end();
        }
      }
    }
    const parsed = successSkeletonSchema.safeParse(scanner.end());
    if (!parsed.success) throw new MalformedResponseError(`Unexpected response shape: ${parsed.error.issues[0]?.message ?? ''}`);
    const { data } = parsed.data;
    if (data.length !== writers.size || data.some((item) => item.b64_json === undefined)) {
      throw new MalformedResponseError('The response lists images without b64_json data.');
    }
    return {
      created: parsed.data.created,
      images: data.map((item) => ({ revisedPrompt: item.revised_prompt ?? undefined })),
      usage: parsed.data.usage,
      size: parsed.data.size,
      quality: parsed.data.quality,
      background: parsed.data.background,
      outputFormat: parsed.data.output_format,
      upstreamRequestId: headerValue(response.headers, 'x-request-id') ?? headerValue(response.headers, 'apim-request-id'),
    };
  } catch (error: unknown) {
    response.body.destroy();
    if (error instanceof MalformedResponseError) {
      throw new UpstreamError('UpstreamInvalidResponse', `Azure OpenAI sent an unusable response: ${error.message}`, { cause: error });
    }
    if (isConnectionError(error)) {
      throw new UpstreamError('UpstreamInvalidResponse', 'The connection to Azure OpenAI broke while the images were arriving.', { cause: error });
    }
    throw error;
  }
}

async function readErrorBody(response: Dispatcher.ResponseData, signal: AbortSignal): Promise<UpstreamErrorBody | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of response.body) {
      if (signal.aborted) break;
      size += (chunk as Buffer).length;
      if (size > MAX_ERROR_BODY_BYTES) break;
      chunks.push(chunk as Buffer);
    }
  } catch {
    // The status alone decides what happens next; a broken error body changes nothing.
    return undefined;
  } finally {
    response.body.destroy();
  }
  try {
    const parsed = errorBodySchema.safeParse(JSON.parse(Buffer.concat(chunks).toString('utf8')));
    return parsed.success ? parsed.data.error : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The upstream's refusal as one of our errors. Callers are told what they can act on: the content
 * filter's stage and categories, and the upstream's own words only for an error about a parameter
 * they sent (trimmed, with URLs, keys and ids taken out). Everything else the upstream said goes to
 * the log, redacted the same way.
 */
function mapErrorResponse(status: number, body: UpstreamErrorBody | undefined, knownSecrets: readonly string[]): Error {
  const code = body?.code === undefined || body.code === null ? undefined : String(body.code);
  const said = redactUpstreamText(body?.message ?? '', knownSecrets);
  const logged = trimMessage(said, MAX_LOGGED_MESSAGE_LENGTH);
  const upstream = `HTTP ${status}${code ? `, ${code}` : ''}`;
  if (status === 400 && isContentFilter(code, body)) {
    const stage = contentFilterStage(body);
    const categories = contentFilterCategories(body);
    return new ContentFilterError(
      stage === 'output'
        ? 'The generated image was blocked by the Azure OpenAI safety system. Change the prompt and try again.'
        : 'The prompt was blocked by the Azure OpenAI safety system. Change the prompt and try again.',
      { upstreamCode: code ?? body?.type ?? 'unknown', stage, ...(categories.length > 0 ? { categories } : {}) },
    );
  }
  if (status === 401 || status === 403) {
    return new UpstreamConfigurationError(
      'UpstreamAuthenticationFailed',
      `Azure OpenAI refused the app's credentials (${upstream}: ${logged}). Check AZURE_OPENAI_AUTH, the API key or the identity's 'Cognitive Services OpenAI User' role.`,
    );
  }
  if (status === 404) {
    return new UpstreamConfigurationError(
      'UpstreamDeploymentNotFound',
      `Azure OpenAI has no such deployment or route (${upstream}: ${logged}). Check AZURE_OPENAI_ENDPOINT, AZURE_OPENAI_DEPLOYMENTS and AZURE_OPENAI_API_VERSION.`,
    );
  }
  // 408 is the upstream's own timeout, not a fault in the request: it falls through to the 5xx mapping, which is retried.
  if (status >= 400 && status < 500 && status !== 408) {
    const param = body?.param?.trim() || undefined;
    const relayed = param === undefined || said === '' ? undefined : trimMessage(said, MAX_RELAYED_MESSAGE_LENGTH);
    return new UpstreamBadRequestError(`Azure OpenAI refused the request (${upstream}${param ? `, param ${param}` : ''}): ${logged}`, {
      publicMessage: relayed
        ? `Azure OpenAI refused ${param}: ${relayed}`
        : `Azure OpenAI refused the request (${upstream}) although it passed this app's checks; change the parameters and try again.`,
      target: param,
      details: { upstreamStatus: status, upstreamCode: code },
    });
  }
  return new UpstreamError('UpstreamError', `Azure OpenAI failed with HTTP ${status}; try again later.`, { details: { upstreamStatus: status, upstreamCode: code } });
}

/** The safety categories that refused the request, from the structured fields or OpenAI's `safety_violations=[...]`. */
function contentFilterCategories(body: UpstreamErrorBody | undefined): string[] {
  const named = (body?.moderation_details?.categories ?? []).filter((category): category is string => typeof category === 'string');
  const filtered = Object.entries(body?.inner_error?.content_filter_results ?? {})
    .filter(([, result]) => typeof result === 'object' && result !== null && Reflect.get(result, 'filtered') === true)
    .map(([category]) => category);
  const listed = /safety_violations=\[([^\]]*)\]/.exec(body?.message ?? '')?.[1]?.split(',') ?? [];
  // Only plain category words reach the caller, and only a few.
  const words = [...named, ...filtered, ...listed].map((category) => category.trim().toLowerCase()).filter((category) => /^[a-z][a-z_/-]{0,39}$/.test(category));
  return [...new Set(words)].slice(0, 10);
}

function isContentFilter(code: string | undefined, body: UpstreamErrorBody | undefined): boolean {
  return (
    (code !== undefined && CONTENT_FILTER_CODES.has(code)) ||
    body?.type === 'image_generation_user_error' ||
    body?.inner_error?.code === 'ResponsibleAIPolicyViolation'
  );
}

function contentFilterStage(body: UpstreamErrorBody | undefined): 'input' | 'output' | 'unknown' {
  const stage = body?.moderation_details?.moderation_stage;
  if (stage === 'input' || stage === 'output') return stage;
  const message = body?.message ?? '';
  if (/generated image|output/i.test(message)) return 'output';
  if (/prompt|your task|your request/i.test(message) || body?.param === 'prompt') return 'input';
  return 'unknown';
}

function headerValue(headers: Dispatcher.ResponseData['headers'], name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** `retry-after-ms` first (Azure's precise hint), then `retry-after` in seconds or as an HTTP date. */
export function retryAfterInMs(headers: Dispatcher.ResponseData['headers'], now = Date.now()): number | undefined {
  const milliseconds = Number(headerValue(headers, 'retry-after-ms'));
  if (headerValue(headers, 'retry-after-ms') !== undefined && Number.isFinite(milliseconds) && milliseconds >= 0) return milliseconds;
  const retryAfter = headerValue(headers, 'retry-after');
  if (retryAfter === undefined) return undefined;
  const seconds = Number(retryAfter);
  if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1000;
  const date = Date.parse(retryAfter);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

/** The status and what the rate-limit headers say; values the service sends as -1 (not applicable) are left out. */
export function observationOf(response: Pick<Dispatcher.ResponseData, 'statusCode' | 'headers'>, now = Date.now()): UpstreamObservation {
  const count = (name: string): number | undefined => {
    const value = Number(headerValue(response.headers, name));
    return headerValue(response.headers, name) !== undefined && Number.isInteger(value) && value >= 0 ? value : undefined;
  };
  return {
    status: response.statusCode,
    retryAfterInMs: retryAfterInMs(response.headers, now),
    remainingRequests: count('x-ratelimit-remaining-requests'),
    limitRequests: count('x-ratelimit-limit-requests'),
    resetRequestsInMs: durationInMs(headerValue(response.headers, 'x-ratelimit-reset-requests')),
  };
}

/** `x-ratelimit-reset-*`: seconds as a number (Azure), or a duration such as `1m30s` or `850ms` (OpenAI). */
function durationInMs(value: string | undefined): number | undefined {
  if (value === undefined || value.trim() === '') return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return seconds >= 0 ? seconds * 1000 : undefined;
  const match = /^(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m(?!s))?(?:(\d+(?:\.\d+)?)s)?(?:(\d+(?:\.\d+)?)ms)?$/.exec(value.trim());
  if (!match || match[0] === '') return undefined;
  const [hours = 0, minutes = 0, wholeSeconds = 0, milliseconds = 0] = match.slice(1).map((part) => Number(part ?? 0));
  return ((hours * 60 + minutes) * 60 + wholeSeconds) * 1000 + milliseconds;
}

function errorCode(error: unknown): string | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string') return code;
  return errorCode((error as { cause?: unknown }).cause);
}

function isRetryableConnectionError(error: unknown): boolean {
  const code = errorCode(error);
  return code !== undefined && RETRYABLE_CONNECTION_CODES.has(code);
}

function isConnectionError(error: unknown): boolean {
  const code = errorCode(error);
  return code !== undefined && (RETRYABLE_CONNECTION_CODES.has(code) || code.startsWith('UND_ERR'));
}
