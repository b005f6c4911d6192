import { setTimeout as sleep } from 'node:timers/promises';

import type { BackendProfile, BackendRouter, Unavailability } from './backend-router';
import { AppError, UpstreamError, UpstreamThrottledError, UpstreamTimeoutError } from './errors';
import type { ImageModel } from './image-models';
import type {
  CallOptions,
  Clock,
  ImageEditRequest,
  ImageGenerationRequest,
  ImageGenerationResult,
  ImageModelClient,
  ImageSink,
  UpstreamCapacity,
  UpstreamObservation,
} from './ports';

/** One deployment that serves a model, and the client of its endpoint. */
export interface ImageBackend {
  readonly profile: BackendProfile;
  readonly deployment: string;
  /** Makes one HTTP request per call: retrying and failing over is the routed client's job. */
  readonly client: ImageModelClient;
}

export interface RoutedImageModelClientOptions {
  readonly backends: readonly ImageBackend[];
  readonly router: BackendRouter;
  readonly clock: Clock;
  /** Deadline of one call, failovers, retries and waits included. */
  readonly timeoutInMs: number;
  /** Retries after a failure (5xx, 408, no answer), on another backend when one is available. Throttled backends are skipped without counting. */
  readonly maxRetries: number;
  /** First wait before retrying a backend that just failed when there is no other; doubles per retry. Default 500 ms. */
  readonly minRetryDelayInMs?: number;
}

// Failures another backend, or the same one a moment later, may not repeat. Anything else is the
// request's own fault, a configuration problem, or a response that already started to arrive.
const RETRYABLE_CODES = new Set(['UpstreamUnavailable', 'UpstreamError']);

/**
 * The image model behind several deployments: each call goes to the backend the router picks, fails
 * over to the next on 429 or failure within its deadline, and when every backend is known to be
 * throttled answers 429 at once with the earliest time one frees up, without a doomed call.
 */
export class RoutedImageModelClient implements ImageModelClient, UpstreamCapacity {
  private readonly backends: ReadonlyMap<string, ImageBackend>;
  private readonly minRetryDelayInMs: number;

  constructor(private readonly options: RoutedImageModelClientOptions) {
    this.backends = new Map(options.backends.map((backend) => [backend.profile.name, backend]));
    this.minRetryDelayInMs = options.minRetryDelayInMs ?? 500;
  }

  generateImages(request: ImageGenerationRequest, sink: ImageSink, callOptions: CallOptions = {}): Promise<ImageGenerationResult> {
    return this.route(request.model, request.n, callOptions, (backend, options) =>
      backend.client.generateImages({ ...request, deployment: backend.deployment }, sink, options),
    );
  }

  editImages(request: ImageEditRequest, sink: ImageSink, callOptions: CallOptions = {}): Promise<ImageGenerationResult> {
    return this.route(request.model, request.n, callOptions, (backend, options) =>
      backend.client.editImages({ ...request, deployment: backend.deployment }, sink, options),
    );
  }

  whenAvailable(model: ImageModel, images: number): Unavailability | undefined {
    return this.options.router.unavailability(model, images);
  }

  private async route(
    model: ImageModel,
    images: number,
    callOptions: CallOptions,
    call: (backend: ImageBackend, options: CallOptions) => Promise<ImageGenerationResult>,
  ): Promise<ImageGenerationResult> {
    const { router, clock, timeoutInMs, maxRetries } = this.options;
    const deadline = new AbortController();
    const timer = setTimeout(() => deadline.abort(new UpstreamTimeoutError(`Azure OpenAI did not finish within ${timeoutInMs} ms.`)), timeoutInMs);
    const abortSignal = callOptions.abortSignal ? AbortSignal.any([callOptions.abortSignal, deadline.signal]) : deadline.signal;
    const failed = new Set<string>();
    // A backend that refused this call is asked again only by a later call, after what it said: one
    // refusal per backend, however short its Retry-After, so a call never spins on 429s.
    const refused = new Set<string>();
    let lastFailure: AppError | undefined;
    try {
      for (let retries = 0; ; ) {
        const selection = router.select(model, images, new Set([...failed, ...refused]));
        if (selection.kind === 'send' && refused.has(selection.backend.name)) {
          selection.ticket.cancel();
          throw this.throttled(model, images);
        }
        if (selection.kind === 'wait') {
          const retryAfterSeconds = Math.max(1, Math.ceil((selection.at - clock.now().getTime()) / 1000));
          if (selection.reason === 'failing') {
            if (lastFailure) throw lastFailure;
            throw new UpstreamError('UpstreamUnavailable', `Every deployment of ${model} is failing; retry after ${retryAfterSeconds} s.`, { retryAfterSeconds });
          }
          throw this.throttled(model, images);
        }
        const backend = this.backends.get(selection.backend.name);
        if (!backend) throw new Error(`The router chose ${selection.backend.name}, which has no client.`);
        let observation: UpstreamObservation | undefined;
        try {
          const result = await call(backend, {
            ...callOptions,
            abortSignal,
            beforeUpstreamRequest: async () => {
              await callOptions.beforeUpstreamRequest?.();
              selection.ticket.departs();
            },
            onUpstreamResponse: (observed) => {
              observation = observed;
              callOptions.onUpstreamResponse?.(observed);
            },
          });
          selection.ticket.complete(observation ?? { status: 200 });
          return result;
        } catch (error: unknown) {
          if (callOptions.abortSignal?.aborted) {
            selection.ticket.cancel();
            throw error;
          }
          // No answer at all (unreachable, cut off, out of time) says as much about the backend as a 5xx.
          selection.ticket.complete(observation ?? { status: 0 });
          // The router now knows this backend is throttled; the next turn tries another or says when.
          if (error instanceof UpstreamThrottledError) {
            refused.add(backend.profile.name);
            continue;
          }
          if (!(error instanceof AppError && RETRYABLE_CODES.has(error.code)) || retries >= maxRetries) throw error;
          retries += 1;
          failed.add(backend.profile.name);
          lastFailure = error;
          if (router.unavailability(model, images, failed) !== undefined) await this.backoff(retries, abortSignal);
        }
      }
    } finally {
      clearTimeout(timer);
    }
  }

  /** 429 with the earliest time a backend of the model has room again (at least a second from now). */
  private throttled(model: ImageModel, images: number): UpstreamThrottledError {
    const now = this.options.clock.now().getTime();
    const at = this.options.router.unavailability(model, images)?.at ?? now;
    const retryAfterSeconds = Math.max(1, Math.ceil((at - now) / 1000));
    return new UpstreamThrottledError(`Every deployment of ${model} is at its quota; retry after ${retryAfterSeconds} s (Retry-After).`, retryAfterSeconds);
  }

  /** Exponential backoff with jitter before trying a backend that just failed, when there is no other to try. */
  private async backoff(retry: number, abortSignal: AbortSignal): Promise<void> {
    const delay = this.minRetryDelayInMs * 2 ** (retry - 1) * (0.8 + Math.random() * 0.4);
    try {
      await sleep(delay, undefined, { signal: abortSignal });
    } catch (error: unknown) {
      throw abortSignal.reason ?? error;
    }
  }
}
