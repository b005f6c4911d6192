/**
 * A local emulator of the Azure OpenAI (and OpenAI) images API for development, tests and benchmarks.
 * It follows the service's processing order (image-api.md §10): route → auth → deployment →
 * api-version and operation support → scripted fault → body → per-model validation → content filter →
 * latency → success, answering with the service's status codes, bodies and headers, and real images.
 */
import { createHash, randomUUID } from 'node:crypto';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { createServer } from 'node:http';

import { z } from 'zod';

import { authenticate, recordedHeaders } from './auth';
import { readEditInputs, FILE_FIELD_NAMES, MAX_INPUT_IMAGES, MAX_MASK_BYTES } from './edit-inputs';
import type { EditInputs } from './edit-inputs';
import {
  EmulatorHttpError,
  azureImageAnnotations,
  contentFiltered,
  defaultContentFilterStyle,
  deploymentNotFound,
  emulatorDirectiveError,
  forbidden,
  internalError,
  invalidRequest,
  nowInSeconds,
  operationNotSupported,
  rateLimited,
  resourceNotFound,
  revisePrompt,
  serverError,
} from './errors';
import type { Directives, EmulatorFault } from './faults';
import { DirectiveError, directivesInHeader, directivesInPrompt, emulatorFaultListSchema } from './faults';
import { LruCache } from './images/lru';
import type { ImageDetail } from './images/render';
import { ImageRenderer } from './images/render';
import type { ModelId, ModelProfile } from './models';
import { MODEL_IDS, MODEL_PROFILES, computeUsage, formatSize, inputImageTokens, isModelId, outputTokensPerImage } from './models';
import type { ResponseImage, StreamEvent } from './payloads';
import { eventStreamPieces, imagesResponsePieces } from './payloads';
import type { ParsedBody } from './request-body';
import { imageCountOf, modelOf, parseBody, promptOf, readBody } from './request-body';
import type { BodyPiece } from './respond';
import { bodyLength, writePieces } from './respond';
import type { ApiFlavour, ApiRoute, ImageOperation } from './routes';
import { apiVersionSupportsEdits, matchApiRoute } from './routes';
import type { QuotaSpec } from './quotas';
import { DeploymentUsage, quotaLimit, quotaSpecSchema } from './quotas';
import type { ImageParameters } from './validation';
import { coerceFormFields, describeValue, validateParameters } from './validation';

export type { EmulatorFault } from './faults';
export type { QuotaSpec } from './quotas';

export interface EmulatorOptions {
  /** Default '127.0.0.1'. */
  host?: string;
  /** Default 0: a free port. */
  port?: number;
  /** Accepted `api-key` values (and `Authorization: Bearer <key>` on /openai/v1 and /v1 routes). Default ['emulator-key']. */
  apiKeys?: readonly string[];
  /** Accept any JWT-looking bearer; an `aud` claim must name Cognitive Services or Azure AI. Default true. */
  acceptBearerTokens?: boolean;
  /** Deployment name → model id. Default: one deployment per model, named like it. */
  deployments?: Record<string, string>;
  /** Fixed delay before answering a valid request. Default 0. */
  latencyMs?: number;
  /** 'flat': small, fast images; 'noise': realistic byte sizes (≈3 MB for a 1024x1024 PNG). Default 'flat'. */
  imageDetail?: 'flat' | 'noise';
  /** Edits: per-file cap. Default 50 MiB. (The mask cap is the service's 4 MiB.) */
  maxImageBytes?: number;
  /** Deployment name → its quota, enforced over a sliding window. Default: none (the headers report a generous limit). */
  quotas?: Record<string, QuotaSpec>;
  /** How long a quota's "minute" lasts, so tests and benchmarks can throttle in seconds. Default 60 000. */
  minuteMs?: number;
}

export interface EmulatorRequestRecord {
  method: string;
  /** When it arrived (ms since the epoch). */
  receivedAt: number;
  /** The request target as sent, query included. */
  path: string;
  deployment?: string;
  model?: string;
  operation: 'generations' | 'edits' | 'unknown';
  /** The status sent; 0 while pending or when no response was sent (timeout and reset faults). */
  status: number;
  requestId: string;
  headers: Record<string, string>;
  /** Parsed JSON, or the text fields of a form. */
  body?: unknown;
  /** Edits: the file parts received (without their bytes; the hash lets a test prove they arrived intact). */
  files?: { field: string; filename: string; contentType: string; size: number; sha256: string }[];
}

export interface RunningEmulator {
  /** e.g. http://127.0.0.1:PORT (no trailing slash). */
  readonly url: string;
  /** Every API request received, in order of arrival (the latest 10 000; control-plane requests are not recorded). */
  readonly requests: readonly EmulatorRequestRecord[];
  /** Scripted faults for the next API requests, first in first out, one per request. */
  enqueueFaults(...faults: EmulatorFault[]): void;
  /** Adds or replaces a deployment, with its quota (none: not enforced). Its usage so far is kept. */
  setDeployment(name: string, deployment: { model: string; quota?: QuotaSpec | undefined }): void;
  /** Removes a deployment; requests for it then get the service's DeploymentNotFound. */
  removeDeployment(name: string): void;
  /** Clears the records, the queued faults and the quotas' usage. */
  reset(): void;
  /** Stops listening and destroys every open connection, including requests held by a timeout fault. */
  close(): Promise<void>;
}

export const DEFAULT_API_KEY = 'emulator-key';
export const DEFAULT_DEPLOYMENTS: Readonly<Record<string, ModelId>> = Object.fromEntries(MODEL_IDS.map((id) => [id, id]));

const DEFAULT_MAX_IMAGE_BYTES = 50 * 1024 * 1024;
const MAX_JSON_BODY_BYTES = 4 * 1024 * 1024;
const MAX_CONTROL_BODY_BYTES = 1024 * 1024;
const MAX_RECORDS = 10_000;
const REGION = 'East US 2';
const DEFAULT_MINUTE_MS = 60_000;

interface Settings {
  readonly apiKeys: ReadonlySet<string>;
  readonly acceptBearerTokens: boolean;
  readonly deployments: ReadonlyMap<string, ModelProfile>;
  readonly latencyMs: number;
  readonly imageDetail: ImageDetail;
  readonly maxImageBytes: number;
  readonly quotas: ReadonlyMap<string, QuotaSpec>;
  readonly minuteMs: number;
}

function resolveSettings(options: EmulatorOptions): Settings {
  const problems: string[] = [];
  const deployments = new Map<string, ModelProfile>();
  for (const [name, model] of Object.entries(options.deployments ?? DEFAULT_DEPLOYMENTS)) {
    if (isModelId(model)) deployments.set(name, MODEL_PROFILES[model]);
    else problems.push(`deployment '${name}' names unknown model '${model}' (known: ${MODEL_IDS.join(', ')})`);
  }
  const apiKeys = options.apiKeys ?? [DEFAULT_API_KEY];
  if (apiKeys.some((key) => key.length === 0)) problems.push('an API key is empty');
  const latencyMs = options.latencyMs ?? 0;
  if (!Number.isInteger(latencyMs) || latencyMs < 0) problems.push(`latencyMs must be a whole number ≥ 0, not ${latencyMs}`);
  const maxImageBytes = options.maxImageBytes ?? DEFAULT_MAX_IMAGE_BYTES;
  if (!Number.isInteger(maxImageBytes) || maxImageBytes <= 0) problems.push(`maxImageBytes must be a whole number > 0, not ${maxImageBytes}`);
  const quotas = new Map<string, QuotaSpec>();
  for (const [name, quota] of Object.entries(options.quotas ?? {})) {
    const parsed = quotaSpecSchema.safeParse(quota);
    if (!deployments.has(name)) problems.push(`a quota names deployment '${name}', which is not one of the deployments`);
    else if (!parsed.success) problems.push(`the quota of '${name}' must be {"imagesPerMinute": N} or {"requestsPerMinute": N} with N ≥ 1`);
    else quotas.set(name, parsed.data);
  }
  const minuteMs = options.minuteMs ?? DEFAULT_MINUTE_MS;
  if (!Number.isInteger(minuteMs) || minuteMs < 100) problems.push(`minuteMs must be a whole number ≥ 100, not ${minuteMs}`);
  if (problems.length > 0) throw new Error(`Invalid emulator options: ${problems.join('; ')}.`);
  return {
    apiKeys: new Set(apiKeys),
    acceptBearerTokens: options.acceptBearerTokens ?? true,
    deployments,
    latencyMs,
    imageDetail: options.imageDetail ?? 'flat',
    maxImageBytes,
    quotas,
    minuteMs,
  };
}

type Outcome =
  | { readonly kind: 'error'; readonly error: EmulatorHttpError }
  | { readonly kind: 'hang' }
  | { readonly kind: 'reset' }
  | { readonly kind: 'gone' }
  | { readonly kind: 'success'; readonly pieces: readonly BodyPiece[]; readonly eventStream: boolean; readonly truncate: boolean };

interface Target {
  readonly deployment: string;
  readonly model: ModelProfile;
}

/** DALL-E qualities have no token table; the GPT ones index it. */
function gptQuality(params: ImageParameters): 'low' | 'medium' | 'high' {
  return params.quality === 'standard' || params.quality === 'hd' ? 'high' : params.quality;
}

function headerValue(request: IncomingMessage, name: string): string | undefined {
  const value = request.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

class ImagesEmulator {
  readonly records: EmulatorRequestRecord[] = [];
  readonly faults: EmulatorFault[] = [];
  private readonly renderer: ImageRenderer;
  /** DALL-E 3 `url` results, served from /_emulator/files/ like the service's short-lived blob links. */
  private readonly files = new LruCache<Buffer>(64, 256 * 1024 * 1024);
  private readonly deployments: Map<string, ModelProfile>;
  private readonly usages = new Map<string, DeploymentUsage>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private baseUrl = '';

  constructor(private readonly settings: Settings) {
    this.renderer = new ImageRenderer(settings.imageDetail);
    this.deployments = new Map(settings.deployments);
    for (const [name, quota] of settings.quotas) this.usages.set(name, new DeploymentUsage(quota, settings.minuteMs));
  }

  setDeployment(name: string, model: ModelProfile, quota: QuotaSpec | undefined): void {
    this.deployments.set(name, model);
    this.quotaUsage(name).quota = quota;
  }

  removeDeployment(name: string): boolean {
    this.usages.delete(name);
    return this.deployments.delete(name);
  }

  /** The deployments with their quotas and what they used in the current window. */
  describeDeployments(now: number): Record<string, unknown> {
    return Object.fromEntries(
      [...this.deployments].map(([name, model]) => {
        const usage = this.usages.get(name);
        const quota = usage?.quota;
        const used = usage?.used(now) ?? 0;
        return [name, { model: model.id, quota: quota ?? null, used, ...(quota ? { remaining: Math.max(0, quotaLimit(quota) - used) } : {}) }];
      }),
    );
  }

  setBaseUrl(url: string): void {
    this.baseUrl = url;
  }

  stopTimers(): void {
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
  }

  async handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const url = new URL(request.url ?? '/', 'http://emulator.invalid');
    if (url.pathname.startsWith('/_emulator/')) {
      await this.controlPlane(request, response, url);
      return;
    }
    const record: EmulatorRequestRecord = {
      method: request.method ?? 'GET',
      receivedAt: Date.now(),
      path: request.url ?? '/',
      operation: 'unknown',
      status: 0,
      requestId: randomUUID(),
      headers: recordedHeaders(request.headers),
    };
    this.records.push(record);
    // A long-running local stack must not grow without bound; tests and benchmarks stay far below this.
    if (this.records.length > MAX_RECORDS) this.records.splice(0, this.records.length - MAX_RECORDS);

    let outcome: Outcome;
    try {
      const route = matchApiRoute(record.method, url);
      if (!route) throw resourceNotFound();
      outcome = await this.process(request, response, route, record);
    } catch (error: unknown) {
      if (error instanceof EmulatorHttpError) {
        outcome = { kind: 'error', error };
      } else if (request.destroyed && !request.complete) {
        // The client went away while sending its body: nobody is left to answer.
        outcome = { kind: 'gone' };
      } else {
        // Log once here, where the request is known; the client gets a plain 500.
        console.error(`[emulator] request ${record.requestId} failed unexpectedly:`, error);
        outcome = { kind: 'error', error: internalError() };
      }
    }
    await this.deliver(request, response, record, outcome);
  }

  private async process(
    request: IncomingMessage,
    response: ServerResponse,
    route: ApiRoute,
    record: EmulatorRequestRecord,
  ): Promise<Outcome> {
    record.operation = route.operation;
    // The body is read first: the records keep it, and the v1 flavours name their deployment in it.
    const limit = route.operation === 'edits' ? this.settings.maxImageBytes * MAX_INPUT_IMAGES + MAX_MASK_BYTES + 1024 * 1024 : MAX_JSON_BODY_BYTES;
    const body = await parseBody(route.operation, headerValue(request, 'content-type'), await readBody(request, limit));
    if (body.kind === 'json') record.body = body.value;
    if (body.kind === 'form') {
      record.body = body.fields;
      record.files = body.files.map((file) => ({
        field: file.field,
        filename: file.filename,
        contentType: file.contentType,
        size: file.bytes.length,
        sha256: createHash('sha256').update(file.bytes).digest('hex'),
      }));
    }

    authenticate(request.headers, route.flavour, this.settings);

    const target = this.resolveTarget(route, body);
    record.deployment = target.deployment;
    record.model = target.model.id;

    if (route.flavour === 'azure-deployment') {
      // The SDK always sends api-version; without it, or for edits before 2025-04-01-preview, the route does not exist.
      if (route.apiVersion === undefined) throw resourceNotFound();
      if (route.operation === 'edits' && !apiVersionSupportsEdits(route.apiVersion)) throw resourceNotFound();
    }
    if (route.operation === 'edits' && !target.model.supportsEdits) throw operationNotSupported(route.flavour, route.operation, target.model.id);

    // The quota is the gateway's business: a throttled request is refused before anyone reads it.
    const waitInMs = this.quotaUsage(target.deployment).admit(imageCountOf(body), Date.now());
    if (waitInMs !== undefined) {
      throw rateLimited(route.flavour, route.operation, target.model.id, route.apiVersion, { milliseconds: Math.ceil(waitInMs) });
    }

    const directives = this.takeDirectives(request, body);
    const fault = directives.fault;
    if (fault?.kind === 'status') {
      const retryAfter = {
        ...(fault.retryAfterSeconds === undefined ? {} : { seconds: fault.retryAfterSeconds }),
        ...(fault.retryAfterMs === undefined ? {} : { milliseconds: fault.retryAfterMs }),
      };
      throw fault.status === 429
        ? rateLimited(route.flavour, route.operation, target.model.id, route.apiVersion, retryAfter)
        : serverError(route.flavour, fault.status, retryAfter);
    }
    if (fault?.kind === 'forbidden') throw forbidden();
    if (fault?.kind === 'error') throw new EmulatorHttpError(fault.status, { error: fault.error });
    if (fault?.kind === 'timeout') return { kind: 'hang' };
    if (fault?.kind === 'reset') return { kind: 'reset' };

    if (body.kind === 'invalid') throw body.error;
    const context = { model: target.model, operation: route.operation, flavour: route.flavour };
    let params: ImageParameters;
    let editInputs: EditInputs | undefined;
    if (body.kind === 'form') {
      const scalars = Object.fromEntries(Object.entries(body.fields).filter(([name]) => !FILE_FIELD_NAMES.has(name)));
      params = validateParameters(coerceFormFields(scalars), context);
      editInputs = await readEditInputs({ fields: body.fields, files: body.files, flavour: route.flavour, maxImageBytes: this.settings.maxImageBytes });
    } else {
      params = validateParameters(body.value, context);
    }

    if (fault?.kind === 'content-filter') {
      throw contentFiltered({
        flavour: route.flavour,
        stage: fault.stage,
        style: fault.style ?? defaultContentFilterStyle(route.flavour, target.model.id),
        requestId: record.requestId,
        prompt: params.prompt,
      });
    }

    const latencyMs = directives.latencyMs ?? this.settings.latencyMs;
    if (latencyMs > 0 && !(await this.sleep(latencyMs, response))) return { kind: 'gone' };

    return this.succeed(request, params, route, target, editInputs, fault);
  }

  private async succeed(
    request: IncomingMessage,
    params: ImageParameters,
    route: ApiRoute,
    target: Target,
    editInputs: EditInputs | undefined,
    fault: EmulatorFault | undefined,
  ): Promise<Outcome> {
    const malformed = fault?.kind === 'malformed';
    const truncate = fault?.kind === 'truncate';
    // DALL-E URLs point back at the host the client used, which may not be the address the emulator bound.
    const host = headerValue(request, 'host');
    const origin = host === undefined ? this.baseUrl : `http://${host}`;
    if (target.model.family === 'dall-e') {
      return { kind: 'success', pieces: await this.dallEResponse(params, route.flavour, origin, malformed), eventStream: false, truncate };
    }
    const rendered = await this.renderImages(params, route.operation, editInputs);
    this.quotaUsage(target.deployment).countTokens(outputTokensPerImage(gptQuality(params), rendered.size) * params.n, Date.now());
    const pieces = params.stream
      ? eventStreamPieces(await this.streamEvents(params, target.model, route.operation, rendered, editInputs), malformed)
      : imagesResponsePieces({
          created: nowInSeconds(),
          images: rendered.images.map((bytes) => ({ bytes, fields: {} })),
          tail: {
            background: rendered.transparent ? 'transparent' : 'opaque',
            output_format: params.outputFormat,
            quality: params.quality,
            size: formatSize(rendered.size),
            usage: this.usage(params, target.model, rendered.size, editInputs),
          },
          malformed,
        });
    return { kind: 'success', pieces, eventStream: params.stream, truncate };
  }

  private resolveTarget(route: ApiRoute, body: ParsedBody): Target {
    if (route.flavour === 'azure-deployment') {
      const name = route.pathDeployment ?? '';
      const model = this.deployments.get(name);
      if (!model) throw deploymentNotFound(route.flavour, name);
      return { deployment: name, model };
    }
    if (body.kind === 'invalid') throw body.error;
    const requested = modelOf(body);
    if (requested === undefined || requested === null) {
      throw invalidRequest("Missing required parameter: 'model'.", 'model', 'missing_required_parameter');
    }
    if (typeof requested !== 'string') {
      throw invalidRequest(`Invalid type for 'model': expected a string, but got ${describeValue(requested)} instead.`, 'model', 'invalid_type');
    }
    const byName = this.deployments.get(requested);
    if (byName) return { deployment: requested, model: byName };
    // OpenAI callers name the model itself; serve it from the first deployment of that model.
    if (route.flavour === 'openai') {
      for (const [deployment, model] of this.deployments) {
        if (model.id === requested) return { deployment, model };
      }
    }
    throw deploymentNotFound(route.flavour, requested);
  }

  /** A queued fault first (consumed), then the `x-emulator-fault` header, then the prompt's directives. */
  private takeDirectives(request: IncomingMessage, body: ParsedBody): Directives {
    let fromHeader: Directives = {};
    let fromPrompt: Directives = {};
    try {
      const header = headerValue(request, 'x-emulator-fault');
      if (header !== undefined) fromHeader = directivesInHeader(header);
      const prompt = promptOf(body);
      if (prompt !== undefined) fromPrompt = directivesInPrompt(prompt);
    } catch (error: unknown) {
      if (error instanceof DirectiveError) throw emulatorDirectiveError(error.message);
      throw error;
    }
    const fault = this.faults.shift() ?? fromHeader.fault ?? fromPrompt.fault;
    const latencyMs = fromHeader.latencyMs ?? fromPrompt.latencyMs;
    return { ...(fault ? { fault } : {}), ...(latencyMs === undefined ? {} : { latencyMs }) };
  }

  private async renderImages(
    params: ImageParameters,
    operation: ImageOperation,
    editInputs: EditInputs | undefined,
  ): Promise<{ images: Buffer[]; transparent: boolean; size: { width: number; height: number } }> {
    const indexes = Array.from({ length: params.n }, (_, index) => index);
    if (operation === 'edits' && editInputs) {
      const first = editInputs.images[0];
      const size = params.size ?? { width: first?.width ?? 1024, height: first?.height ?? 1024 };
      const results = await Promise.all(
        indexes.map((index) =>
          this.renderer.renderEdit({
            prompt: params.prompt,
            index,
            ...size,
            format: params.outputFormat,
            background: params.background,
            ...(params.outputCompression === undefined ? {} : { compression: params.outputCompression }),
            ...(editInputs.firstImage ? { input: editInputs.firstImage } : {}),
            ...(editInputs.mask ? { mask: editInputs.mask } : {}),
          }),
        ),
      );
      return { images: results.map((result) => result.bytes), transparent: results.some((result) => result.transparent), size };
    }
    const size = params.size ?? { width: 1024, height: 1024 };
    const transparent = params.background === 'transparent';
    const images = await Promise.all(
      indexes.map((index) =>
        this.renderer.render({
          prompt: params.prompt,
          ...size,
          format: params.outputFormat,
          transparent,
          index,
          ...(params.outputCompression === undefined ? {} : { compression: params.outputCompression }),
        }),
      ),
    );
    return { images, transparent, size };
  }

  private usage(
    params: ImageParameters,
    model: ModelProfile,
    size: { width: number; height: number },
    editInputs: EditInputs | undefined,
    count = params.n,
  ): ReturnType<typeof computeUsage> {
    // gpt-image-2 always reads its inputs at high fidelity; the others default to low.
    const fidelity = model.inputFidelities === 'refused' ? 'high' : (params.inputFidelity ?? 'low');
    const imageTokens = editInputs?.images.reduce((sum, info) => sum + inputImageTokens(info, fidelity), 0) ?? 0;
    return computeUsage({
      prompt: params.prompt,
      quality: gptQuality(params),
      size,
      count,
      inputImageTokens: imageTokens,
      partialImages: params.stream ? params.partialImages : 0,
    });
  }

  private async streamEvents(
    params: ImageParameters,
    model: ModelProfile,
    operation: ImageOperation,
    rendered: { images: Buffer[]; transparent: boolean; size: { width: number; height: number } },
    editInputs: EditInputs | undefined,
  ): Promise<StreamEvent[]> {
    const prefix = operation === 'edits' ? 'image_edit' : 'image_generation';
    const createdAt = nowInSeconds();
    const events: StreamEvent[] = [];
    for (const [index, bytes] of rendered.images.entries()) {
      for (let partial = 0; partial < params.partialImages; partial++) {
        const partialBytes = await this.renderer.render({
          prompt: params.prompt,
          ...rendered.size,
          format: params.outputFormat,
          transparent: rendered.transparent,
          index,
          variant: `partial-${partial}`,
          ...(params.outputCompression === undefined ? {} : { compression: params.outputCompression }),
        });
        // Partial events echo the values as requested (they may still say 'auto').
        events.push({
          type: `${prefix}.partial_image`,
          bytes: partialBytes,
          fields: {
            created_at: createdAt,
            size: params.requestedSize,
            quality: params.requestedQuality,
            background: params.background,
            output_format: params.outputFormat,
            partial_image_index: partial,
          },
        });
      }
      events.push({
        type: `${prefix}.completed`,
        bytes,
        fields: {
          created_at: createdAt,
          size: formatSize(rendered.size),
          quality: params.quality,
          background: rendered.transparent ? 'transparent' : 'opaque',
          output_format: params.outputFormat,
          usage: this.usage(params, model, rendered.size, editInputs, 1),
        },
      });
    }
    return events;
  }

  private async dallEResponse(params: ImageParameters, flavour: ApiFlavour, origin: string, malformed: boolean): Promise<BodyPiece[]> {
    const size = params.size ?? { width: 1024, height: 1024 };
    const bytes = await this.renderer.render({ prompt: params.prompt, ...size, format: 'png', transparent: false, index: 0 });
    const annotations = flavour === 'openai' ? {} : azureImageAnnotations();
    let image: ResponseImage;
    if (params.responseFormat === 'url') {
      const id = randomUUID();
      this.files.set(id, bytes, bytes.length);
      image = { fields: { url: `${origin}/_emulator/files/${id}.png`, revised_prompt: revisePrompt(params.prompt), ...annotations } };
    } else {
      image = { bytes, fields: { revised_prompt: revisePrompt(params.prompt), ...annotations } };
    }
    return imagesResponsePieces({ created: nowInSeconds(), images: [image], tail: {}, malformed });
  }

  /** Waits, unless the client goes away first (then returns false and nothing more is done for it). */
  private sleep(delayMs: number, response: ServerResponse): Promise<boolean> {
    if (response.destroyed || response.socket?.destroyed === true) return Promise.resolve(false);
    return new Promise((resolve) => {
      const onClose = (): void => {
        clearTimeout(timer);
        this.timers.delete(timer);
        resolve(false);
      };
      const timer = setTimeout(() => {
        this.timers.delete(timer);
        response.off('close', onClose);
        resolve(!response.destroyed);
      }, delayMs);
      this.timers.add(timer);
      response.once('close', onClose);
    });
  }

  private quotaUsage(deployment: string): DeploymentUsage {
    let usage = this.usages.get(deployment);
    if (!usage) {
      usage = new DeploymentUsage(undefined, this.settings.minuteMs);
      this.usages.set(deployment, usage);
    }
    return usage;
  }

  private async deliver(request: IncomingMessage, response: ServerResponse, record: EmulatorRequestRecord, outcome: Outcome): Promise<void> {
    const headers: Record<string, string> = {
      'x-request-id': record.requestId,
      'apim-request-id': randomUUID(),
      'x-ms-region': REGION,
      // Requests that named no deployment get the resource's generous defaults, as before any quota.
      ...this.quotaUsage(record.deployment ?? '').headers(Date.now()),
    };
    const clientRequestId = headerValue(request, 'x-ms-client-request-id');
    if (clientRequestId !== undefined) headers['x-ms-client-request-id'] = clientRequestId;

    if (response.destroyed) return;
    switch (outcome.kind) {
      case 'gone':
        return;
      case 'hang':
        // Accepted and never answered: the client's own deadline has to fire. close() ends it.
        if (!request.socket.destroyed) await new Promise((resolve) => response.once('close', resolve));
        return;
      case 'reset':
        request.socket.resetAndDestroy();
        return;
      case 'error': {
        record.status = outcome.error.status;
        const text = JSON.stringify(outcome.error.body);
        // A body left unread (413) would be taken for the next request on this connection.
        const close = outcome.error.status === 413 ? { connection: 'close' } : {};
        response.writeHead(outcome.error.status, {
          ...headers,
          ...outcome.error.headers,
          ...close,
          'content-type': 'application/json; charset=UTF-8',
          'content-length': String(Buffer.byteLength(text)),
        });
        response.end(text);
        return;
      }
      case 'success': {
        record.status = 200;
        const total = bodyLength(outcome.pieces);
        response.writeHead(200, {
          ...headers,
          ...(outcome.eventStream
            ? { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache' }
            : { 'content-type': 'application/json; charset=UTF-8', 'content-length': String(total) }),
        });
        const complete = await writePieces(response, outcome.pieces, outcome.truncate ? Math.floor(total / 2) : undefined);
        if (complete) response.end();
        else request.socket.destroy();
        return;
      }
    }
  }

  private async controlPlane(request: IncomingMessage, response: ServerResponse, url: URL): Promise<void> {
    const method = request.method ?? 'GET';
    const send = (status: number, body?: unknown): void => {
      if (body === undefined) {
        response.writeHead(status).end();
        return;
      }
      const text = JSON.stringify(body);
      response.writeHead(status, { 'content-type': 'application/json; charset=UTF-8', 'content-length': String(Buffer.byteLength(text)) }).end(text);
    };

    const file = /^\/_emulator\/files\/([0-9a-f-]{36})\.png$/.exec(url.pathname);
    if (method === 'GET' && file) {
      const bytes = this.files.get(file[1] ?? '');
      if (!bytes) {
        send(404, { error: { code: 'BlobNotFound', message: 'The specified blob does not exist.' } });
        return;
      }
      response.writeHead(200, { 'content-type': 'image/png', 'content-length': String(bytes.length) }).end(bytes);
      return;
    }
    const route = `${method} ${url.pathname.replace(/\/+$/, '')}`;
    try {
      switch (route) {
        case 'GET /_emulator/health':
          send(200, { status: 'ok', deployments: Object.fromEntries([...this.deployments].map(([name, model]) => [name, model.id])) });
          return;
        case 'GET /_emulator/deployments':
          send(200, { minuteMs: this.settings.minuteMs, deployments: this.describeDeployments(Date.now()) });
          return;
        case 'GET /_emulator/requests':
          send(200, this.records);
          return;
        case 'POST /_emulator/reset':
          this.reset();
          send(204);
          return;
        case 'POST /_emulator/faults': {
          const text = (await readBody(request, MAX_CONTROL_BODY_BYTES)).toString('utf8');
          let json: unknown;
          try {
            json = JSON.parse(text);
          } catch {
            send(400, { error: { code: 'InvalidJson', message: 'The body must be a JSON array of faults.' } });
            return;
          }
          const parsed = emulatorFaultListSchema.safeParse(json);
          if (!parsed.success) {
            send(400, {
              error: {
                code: 'InvalidFaults',
                message: 'The body must be a JSON array of faults.',
                details: parsed.error.issues.map((issue) => ({ path: issue.path.join('.'), message: issue.message })),
              },
            });
            return;
          }
          this.faults.push(...parsed.data);
          send(200, { queued: this.faults.length });
          return;
        }
        default:
          if (await this.deploymentControl(request, url, send)) return;
          send(404, { error: { code: '404', message: 'Resource not found' } });
      }
    } catch (error: unknown) {
      if (error instanceof EmulatorHttpError) {
        send(error.status, error.body);
        return;
      }
      console.error('[emulator] control request failed unexpectedly:', error);
      send(500, internalError().body);
    }
  }

  /** `PUT /_emulator/deployments/{name}` `{"model": …, "quota"?: {…} | null}` and `DELETE /_emulator/deployments/{name}`. */
  private async deploymentControl(request: IncomingMessage, url: URL, send: (status: number, body?: unknown) => void): Promise<boolean> {
    const match = /^\/_emulator\/deployments\/([A-Za-z0-9._-]{1,64})\/?$/.exec(url.pathname);
    const name = match?.[1];
    if (name === undefined) return false;
    if (request.method === 'DELETE') {
      if (this.removeDeployment(name)) send(204);
      else send(404, { error: { code: 'DeploymentNotFound', message: `There is no deployment '${name}'.` } });
      return true;
    }
    if (request.method !== 'PUT') return false;
    const text = (await readBody(request, MAX_CONTROL_BODY_BYTES)).toString('utf8');
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      send(400, { error: { code: 'InvalidJson', message: 'The body must be JSON: {"model": "gpt-image-1.5", "quota": {"imagesPerMinute": 5}}.' } });
      return true;
    }
    const parsed = deploymentSchema.safeParse(json);
    if (!parsed.success) {
      send(400, {
        error: {
          code: 'InvalidDeployment',
          message: `The body must be {"model": one of ${MODEL_IDS.join(', ')}, "quota"?: {"imagesPerMinute": N} or {"requestsPerMinute": N} or null}.`,
          details: parsed.error.issues.map((issue) => ({ path: issue.path.join('.'), message: issue.message })),
        },
      });
      return true;
    }
    this.setDeployment(name, MODEL_PROFILES[parsed.data.model], parsed.data.quota ?? undefined);
    send(200, { [name]: this.describeDeployments(Date.now())[name] });
    return true;
  }

  reset(): void {
    this.records.length = 0;
    this.faults.length = 0;
    for (const [name, usage] of this.usages) this.usages.set(name, new DeploymentUsage(usage.quota, this.settings.minuteMs));
  }
}

const deploymentSchema = z.strictObject({
  model: z.enum(MODEL_IDS),
  quota: quotaSpecSchema.nullable().optional(),
});

function listen(server: Server, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

/** Starts an emulator; resolve means it is listening. */
export async function startEmulator(options: EmulatorOptions = {}): Promise<RunningEmulator> {
  const emulator = new ImagesEmulator(resolveSettings(options));
  const server = createServer((request, response) => {
    emulator.handle(request, response).catch((error: unknown) => {
      console.error('[emulator] unhandled failure:', error);
      response.destroy();
    });
  });
  // A timeout fault holds a request open until close(); Node's default 5-minute request timeout would end it early.
  server.requestTimeout = 0;
  const host = options.host ?? '127.0.0.1';
  await listen(server, options.port ?? 0, host);
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('The emulator is not listening on a TCP port.');
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${address.port}`;
  emulator.setBaseUrl(url);

  let closing: Promise<void> | undefined;
  return {
    url,
    get requests(): readonly EmulatorRequestRecord[] {
      return [...emulator.records];
    },
    enqueueFaults(...faults: EmulatorFault[]): void {
      // Checked like the control plane's faults, for callers that are not type-checked.
      emulator.faults.push(...emulatorFaultListSchema.parse(faults));
    },
    setDeployment(name: string, deployment: { model: string; quota?: QuotaSpec | undefined }): void {
      const parsed = deploymentSchema.parse(deployment);
      emulator.setDeployment(name, MODEL_PROFILES[parsed.model], parsed.quota ?? undefined);
    },
    removeDeployment(name: string): void {
      emulator.removeDeployment(name);
    },
    reset(): void {
      emulator.reset();
    },
    close(): Promise<void> {
      closing ??= new Promise<void>((resolve, reject) => {
        emulator.stopTimers();
        server.close((error) => (error ? reject(error) : resolve()));
        server.closeAllConnections();
      });
      return closing;
    },
  };
}
