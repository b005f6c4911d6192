import type { HttpResponseInit, InvocationContext } from '@azure/functions';

import { AppError, ConfigurationError } from '../domain/errors';

/**
 * The one place that turns a failure into HTTP: `{ "error": { code, message, target?, details? } }`
 * plus `x-ms-error-code`, and `Retry-After` when waiting helps. Unknown errors become a 500 that names
 * only the invocation id; their detail goes to the log, never to the caller.
 */
export function toErrorResponse(error: unknown, context: InvocationContext): HttpResponseInit {
  if (!(error instanceof AppError)) {
    context.error(`Unhandled error in invocation ${context.invocationId}:`, error);
    return render(500, 'InternalError', `The request failed unexpectedly (invocation ${context.invocationId}).`, context);
  }
  if (error.status >= 500) context.warn(`${error.code}: ${error.message}`, describeCause(error.cause));
  // Setting names are for operators, not for callers.
  const message = error instanceof ConfigurationError ? 'The app is misconfigured; its log lists the problems.' : error.message;
  const body: Record<string, unknown> = { code: error.code, message };
  if (error.target !== undefined) body.target = error.target;
  if (error.details !== undefined) body.details = error.details;
  const headers: Record<string, string> = { 'x-ms-error-code': error.code };
  if (error.retryAfterSeconds !== undefined) headers['retry-after'] = String(error.retryAfterSeconds);
  return { status: error.status, headers, jsonBody: { error: body } };
}

function render(status: number, code: string, message: string, context: InvocationContext): HttpResponseInit {
  return { status, headers: { 'x-ms-error-code': code, 'x-ms-invocation-id': context.invocationId }, jsonBody: { error: { code, message } } };
}

// Causes may carry request details from SDKs; log their kind and message, not their whole object graph.
function describeCause(cause: unknown): string {
  if (cause instanceof Error) return `cause: ${cause.name}: ${cause.message}`;
  return cause === undefined ? '' : 'cause: (non-error value)';
}

type Handler<TRequest> = (request: TRequest, context: InvocationContext) => Promise<HttpResponseInit>;

/** Wraps a handler so that anything it throws is rendered by `toErrorResponse`. */
export function withErrorHandling<TRequest>(handler: Handler<TRequest>): Handler<TRequest> {
  return async (request, context) => {
    try {
      return await handler(request, context);
    } catch (error: unknown) {
      return toErrorResponse(error, context);
    }
  };
}
