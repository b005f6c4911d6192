import type { HttpResponseInit, InvocationContext } from '@azure/functions';

import { withInvocationLog } from '../adapters/invocation-log';
import { AppError } from '../domain/errors';

/**
 * The one place that turns a failure into HTTP: `{ "error": { code, message, target?, details? } }`
 * plus `x-ms-error-code`, and `Retry-After` when waiting helps. The body says what the caller can
 * act on (`publicMessage`); what only an operator can act on goes to the log under the invocation id,
 * which every error response carries. Unknown errors become a 500 that names only that id.
 */
export function toErrorResponse(error: unknown, context: InvocationContext): HttpResponseInit {
  if (!(error instanceof AppError)) {
    context.error(`Unhandled error in invocation ${context.invocationId}:`, error);
    return render(500, 'InternalError', `The request failed unexpectedly (invocation ${context.invocationId}).`, context);
  }
  const withheld = error.publicMessage !== error.message;
  if (error.status >= 500 || withheld) {
    context.warn(`${error.code} in invocation ${context.invocationId}: ${error.message}`, describeCause(error.cause));
  }
  // A failure of ours names the invocation, so that whoever reports it can be matched with the log.
  const message = error.status >= 500 ? `${error.publicMessage.replace(/\.$/, '')} (invocation ${context.invocationId}).` : error.publicMessage;
  const body: Record<string, unknown> = { code: error.code, message };
  if (error.target !== undefined) body.target = error.target;
  if (error.details !== undefined) body.details = error.details;
  const headers: Record<string, string> = { 'x-ms-error-code': error.code, 'x-ms-invocation-id': context.invocationId };
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

/** Wraps a handler so that anything it throws is rendered by `toErrorResponse`, and its metering logs to its invocation. */
export function withErrorHandling<TRequest>(handler: Handler<TRequest>): Handler<TRequest> {
  return withInvocationLog(async (request, context) => {
    try {
      return await handler(request, context);
    } catch (error: unknown) {
      return toErrorResponse(error, context);
    }
  });
}
