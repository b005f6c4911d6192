/**
 * The one error hierarchy of the app. Every failure that reaches a caller is an AppError with a stable
 * `code` (documented in the README), an HTTP status hint and, where useful, the field it concerns.
 * Only `http/error-response.ts` turns these into HTTP; the core never reads `status`.
 *
 * `message` is for the log; `publicMessage` is what a caller is told. They differ for failures whose
 * detail is ours to fix (settings, storage, what the upstream said about our deployment): the caller
 * learns what happened, the operator finds the rest in the log.
 */
export interface ErrorDetail {
  readonly code: string;
  readonly message: string;
  readonly target?: string;
}

export interface AppErrorOptions {
  readonly target?: string | undefined;
  readonly details?: readonly ErrorDetail[] | Record<string, unknown> | undefined;
  readonly cause?: unknown;
  /** Seconds a caller should wait before retrying (rendered as `Retry-After`). */
  readonly retryAfterSeconds?: number | undefined;
  /** What the caller is told when `message` is for operators only; defaults to `message`. */
  readonly publicMessage?: string | undefined;
}

export class AppError extends Error {
  readonly target: string | undefined;
  readonly details: readonly ErrorDetail[] | Record<string, unknown> | undefined;
  readonly retryAfterSeconds: number | undefined;
  readonly publicMessage: string;

  constructor(
    readonly code: string,
    readonly status: number,
    message: string,
    options: AppErrorOptions = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.target = options.target;
    this.details = options.details;
    this.retryAfterSeconds = options.retryAfterSeconds;
    this.publicMessage = options.publicMessage ?? message;
  }
}

/** The operator must fix this; said the same way wherever the detail is withheld. */
const OPERATOR_MUST_FIX = "the app's operator must fix its configuration";

/** One or more request fields are invalid; `details` lists every problem, not just the first. */
export class ValidationError extends AppError {
  constructor(message: string, options: AppErrorOptions & { code?: string } = {}) {
    super(options.code ?? 'InvalidRequest', 400, message, options);
  }
}

export class UnsupportedMediaTypeError extends AppError {
  constructor(message: string, options: AppErrorOptions & { code?: string } = {}) {
    super(options.code ?? 'UnsupportedMediaType', 415, message, options);
  }
}

export class PayloadTooLargeError extends AppError {
  constructor(message: string, options: AppErrorOptions & { code?: string } = {}) {
    super(options.code ?? 'PayloadTooLarge', 413, message, options);
  }
}

/** The upstream safety system refused the prompt or the generated image. Never retried. */
export class ContentFilterError extends AppError {
  constructor(message: string, details: { upstreamCode: string; stage: 'input' | 'output' | 'unknown'; categories?: readonly string[] }, cause?: unknown) {
    super('contentFilter', 400, message, { details, cause });
  }
}

/** The upstream refused a request that passed our own validation (its rules changed, or ours are looser). */
export class UpstreamBadRequestError extends AppError {
  constructor(message: string, options: AppErrorOptions = {}) {
    super('UpstreamBadRequest', 400, message, options);
  }
}

/**
 * Our own deployment is misconfigured (upstream auth, deployment name); the caller cannot fix it.
 * `message` names the settings to check, for the log; the caller is told only what failed.
 */
export class UpstreamConfigurationError extends AppError {
  constructor(code: 'UpstreamAuthenticationFailed' | 'UpstreamDeploymentNotFound', message: string, cause?: unknown) {
    super(code, 502, message, {
      cause,
      publicMessage:
        code === 'UpstreamAuthenticationFailed'
          ? `Azure OpenAI refused this app's credentials; ${OPERATOR_MUST_FIX}.`
          : `Azure OpenAI has no deployment serving this request; ${OPERATOR_MUST_FIX}.`,
    });
  }
}

export class UpstreamThrottledError extends AppError {
  constructor(message: string, retryAfterSeconds: number, cause?: unknown) {
    super('TooManyRequests', 429, message, { retryAfterSeconds, cause });
  }
}

export class UpstreamTimeoutError extends AppError {
  constructor(message: string, cause?: unknown) {
    super('UpstreamTimeout', 504, message, { cause });
  }
}

/** 5xx from the upstream, a connection that kept failing, or a body we cannot use. */
export class UpstreamError extends AppError {
  constructor(code: 'UpstreamError' | 'UpstreamUnavailable' | 'UpstreamInvalidResponse', message: string, options: AppErrorOptions = {}) {
    super(code, 502, message, options);
  }
}

export class ConfigurationError extends AppError {
  constructor(readonly problems: readonly string[]) {
    super(
      'ConfigurationError',
      500,
      `The app configuration is invalid (${problems.length} problem${problems.length === 1 ? '' : 's'}):\n` +
        problems.map((problem) => `  - ${problem}`).join('\n'),
      { publicMessage: `The app is misconfigured; ${OPERATOR_MUST_FIX}.` },
    );
  }
}

/** Our own storage failed; nothing the caller sent is at fault. `message` (blob names, the operation) is for the log. */
export class StorageError extends AppError {
  constructor(message: string, cause?: unknown) {
    super('StorageError', 503, message, { cause, retryAfterSeconds: 5, publicMessage: 'The app could not use its storage; try again shortly.' });
  }
}

/** The resource does not exist (or the caller may not know that it does). */
export class NotFoundError extends AppError {
  constructor(code: string, message: string) {
    super(code, 404, message);
  }
}

/** The request clashes with the current state: a reused Idempotency-Key, a job that can no longer be cancelled. */
export class ConflictError extends AppError {
  constructor(code: string, message: string) {
    super(code, 409, message);
  }
}

/** A caller's budget would be exceeded; refused before the upstream was called. `details` says which limit, what is spent and when it resets. */
export class BudgetExceededError extends AppError {
  constructor(message: string, details: Record<string, unknown>, retryAfterSeconds: number) {
    super('BudgetExceeded', 429, message, { details, retryAfterSeconds });
  }
}

/** The caller is not signed in, or a sign-in header did not come from App Service Authentication. */
export class AuthenticationError extends AppError {
  constructor(code: string, message: string) {
    super(code, 401, message);
  }
}

/** The caller is known but may not do this. */
export class ForbiddenError extends AppError {
  constructor(code: string, message: string) {
    super(code, 403, message);
  }
}
