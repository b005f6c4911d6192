/**
 * The error answers of the images API, worded as the services word them (image-api.md §2.3, §7).
 * Each stage of the emulator throws an `EmulatorHttpError`; the server writes it out as JSON.
 */
import type { ModelId } from './models';
import type { ApiFlavour, ImageOperation } from './routes';

export class EmulatorHttpError extends Error {
  constructor(
    readonly status: number,
    readonly body: unknown,
    readonly headers: Readonly<Record<string, string>> = {},
  ) {
    super(`HTTP ${status}`);
    this.name = 'EmulatorHttpError';
  }
}

const isAzure = (flavour: ApiFlavour): boolean => flavour !== 'openai';

/** The OpenAI-style 400 envelope, which Azure also uses for parameter errors on GPT image models. */
export function invalidRequest(message: string, param: string | null, code: string | null): EmulatorHttpError {
  return new EmulatorHttpError(400, { error: { message, type: 'invalid_request_error', param, code } });
}

export function resourceNotFound(): EmulatorHttpError {
  return new EmulatorHttpError(404, { error: { code: '404', message: 'Resource not found' } });
}

export function deploymentNotFound(flavour: ApiFlavour, name: string): EmulatorHttpError {
  if (!isAzure(flavour)) {
    return new EmulatorHttpError(404, {
      error: {
        message: `The model '${name}' does not exist or you do not have access to it.`,
        type: 'invalid_request_error',
        param: null,
        code: 'model_not_found',
      },
    });
  }
  return new EmulatorHttpError(404, {
    error: {
      code: 'DeploymentNotFound',
      message:
        'The API deployment for this resource does not exist. If you created the deployment within the last 5 minutes, please wait a moment and try again.',
    },
  });
}

/** A missing or wrong `api-key` (or key used as a bearer where keys are not accepted that way). */
export function invalidKey(flavour: ApiFlavour, presented: string | undefined): EmulatorHttpError {
  if (!isAzure(flavour)) {
    const message =
      presented === undefined
        ? "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
        : `Incorrect API key provided: ${maskKey(presented)}. You can find your API key at https://platform.openai.com/account/api-keys.`;
    return new EmulatorHttpError(401, {
      error: { message, type: 'invalid_request_error', param: null, code: presented === undefined ? null : 'invalid_api_key' },
    });
  }
  return new EmulatorHttpError(401, {
    error: {
      code: '401',
      message:
        'Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an active subscription and use a correct regional API endpoint for your resource.',
    },
  });
}

/** A bad Entra ID token. Azure answers without the usual `error` wrapper here. */
export function invalidToken(): EmulatorHttpError {
  return new EmulatorHttpError(401, {
    statusCode: 401,
    message: 'Unauthorized. Access token is missing, invalid, audience is incorrect (https://cognitiveservices.azure.com), or have expired.',
  });
}

/** Keys are secrets even in an emulator's echo: show only the ends, as OpenAI does. */
function maskKey(key: string): string {
  return key.length <= 8 ? '****' : `${key.slice(0, 3)}****${key.slice(-4)}`;
}

export function operationNotSupported(flavour: ApiFlavour, operation: ImageOperation, model: ModelId): EmulatorHttpError {
  if (!isAzure(flavour)) {
    return invalidRequest(`Invalid value: '${model}'. This model does not support image ${operation}.`, 'model', 'invalid_value');
  }
  const operationName = operation === 'edits' ? 'imagesEdit' : 'imagesGeneration';
  return new EmulatorHttpError(400, {
    error: {
      code: 'OperationNotSupported',
      message: `The ${operationName} operation does not work with the specified model, ${model}. Please choose different model and try again. You can learn more about which models can be used with each operation here: https://go.microsoft.com/fwlink/?linkid=2197993.`,
    },
  });
}

export function forbidden(): EmulatorHttpError {
  return new EmulatorHttpError(403, {
    error: {
      code: 'Forbidden',
      message:
        'Your resource has been temporarily blocked because we detected behavior that may violate our content policy. Please contact Azure support to resolve this issue.',
    },
  });
}

export interface RetryAfter {
  readonly seconds?: number;
  readonly milliseconds?: number;
}

/** `retry-after` in whole seconds and `retry-after-ms`, each derived from the other when only one was asked for. */
export function retryAfterHeaders(retryAfter: RetryAfter): Record<string, string> {
  const { seconds, milliseconds } = retryAfter;
  if (seconds === undefined && milliseconds === undefined) return {};
  return {
    'retry-after': String(seconds ?? Math.ceil((milliseconds ?? 0) / 1000)),
    'retry-after-ms': String(milliseconds ?? (seconds ?? 0) * 1000),
  };
}

export function rateLimited(
  flavour: ApiFlavour,
  operation: ImageOperation,
  model: ModelId,
  apiVersion: string | undefined,
  retryAfter: RetryAfter,
): EmulatorHttpError {
  // Azure sends both headers on most 429s; without an explicit value the emulator says one second.
  const effective = retryAfter.seconds === undefined && retryAfter.milliseconds === undefined ? { seconds: 1 } : retryAfter;
  const headers = retryAfterHeaders(effective);
  const seconds = Number(headers['retry-after']);
  if (!isAzure(flavour)) {
    return new EmulatorHttpError(
      429,
      {
        error: {
          message: `Rate limit reached for ${model} on images per minute (IPM): Limit 5, Used 5, Requested 1. Please try again in ${seconds}s.`,
          type: 'requests',
          param: null,
          code: 'rate_limit_exceeded',
        },
      },
      headers,
    );
  }
  const operationName = operation === 'edits' ? 'Images_Edit' : 'Images_Generations';
  return new EmulatorHttpError(
    429,
    {
      error: {
        code: '429',
        message: `Requests to the ${operationName} Operation under Azure OpenAI API version ${apiVersion ?? 'v1'} have exceeded call rate limit of your current AIServices S0 pricing tier. Please retry after ${seconds} seconds. Please contact Azure support service if you would like to further increase the default rate limit.`,
      },
    },
    headers,
  );
}

export function serverError(flavour: ApiFlavour, status: 408 | 500 | 502 | 503, retryAfter: RetryAfter): EmulatorHttpError {
  const headers = retryAfterHeaders(retryAfter);
  if (!isAzure(flavour)) {
    const message =
      status === 408 ? 'Request timed out.' : 'The server had an error while processing your request. Sorry about that!';
    return new EmulatorHttpError(status, { error: { message, type: 'server_error', param: null, code: null } }, headers);
  }
  const bodies = {
    408: { code: 'Timeout', message: 'The operation was timeout.' },
    500: { code: 'InternalServerError', message: 'The service encountered an internal error. Please retry.' },
    502: { code: 'BadGateway', message: 'The service received an invalid response from an upstream server. Please retry.' },
    503: { code: 'ServiceUnavailable', message: 'The service is temporarily unable to process your request. Please try again later.' },
  } as const;
  return new EmulatorHttpError(status, { error: bodies[status] }, headers);
}

export type ContentFilterStage = 'input' | 'output';
export type ContentFilterStyle = 'contentFilter' | 'moderation_blocked' | 'content_policy_violation';

/** The style a real deployment would use when none was asked for: DALL-E's, Azure's documented one, or OpenAI's. */
export function defaultContentFilterStyle(flavour: ApiFlavour, model: ModelId): ContentFilterStyle {
  if (model === 'dall-e-3') return 'content_policy_violation';
  return isAzure(flavour) ? 'contentFilter' : 'moderation_blocked';
}

const SAFE = { filtered: false, severity: 'safe' } as const;

function filterResults(flagged: boolean): Record<string, unknown> {
  return {
    hate: SAFE,
    self_harm: SAFE,
    sexual: flagged ? { filtered: true, severity: 'high' } : SAFE,
    violence: SAFE,
  };
}

export function contentFiltered(options: {
  readonly flavour: ApiFlavour;
  readonly stage: ContentFilterStage;
  readonly style: ContentFilterStyle;
  readonly requestId: string;
  readonly prompt: string;
}): EmulatorHttpError {
  const { flavour, stage, style, requestId } = options;
  if (style === 'contentFilter') {
    const message =
      stage === 'input' ? 'Your task failed as a result of our safety system.' : 'Generated image was filtered as a result of our safety system.';
    return new EmulatorHttpError(400, { created: nowInSeconds(), error: { code: 'contentFilter', message } });
  }
  if (style === 'moderation_blocked') {
    const contact = isAzure(flavour) ? 'Azure support ticket' : 'help.openai.com';
    return new EmulatorHttpError(400, {
      error: {
        message: `Your request was rejected by the safety system. If you believe this is an error, contact us at ${contact} and include the request ID ${requestId}. safety_violations=[sexual].`,
        type: 'image_generation_user_error',
        param: isAzure(flavour) ? '' : null,
        code: 'moderation_blocked',
        moderation_details: { moderation_stage: stage, categories: ['sexual'] },
      },
    });
  }
  const message =
    stage === 'input'
      ? 'Your request was rejected as a result of our safety system. Your prompt may contain text that is not allowed by our safety system.'
      : 'Your request was rejected as a result of our safety system. Image descriptions generated from your prompt may contain text that is not allowed by our safety system.';
  return new EmulatorHttpError(400, {
    error: {
      code: 'content_policy_violation',
      type: 'invalid_request_error',
      message,
      inner_error: {
        code: 'ResponsibleAIPolicyViolation',
        content_filter_results: {
          ...filterResults(true),
          jailbreak: { detected: false, filtered: false },
        },
        ...(stage === 'output' ? { revised_prompt: revisePrompt(options.prompt) } : {}),
      },
    },
  });
}

/** The prompt DALL-E 3 says it used; deterministic so tests can compare it. */
export function revisePrompt(prompt: string): string {
  return `A detailed, vivid illustration of the following scene: ${prompt}`;
}

/** Per-item filter annotations that Azure adds to DALL-E 3 results (§5.2). */
export function azureImageAnnotations(): Record<string, unknown> {
  return {
    prompt_filter_results: {
      ...filterResults(false),
      profanity: { detected: false, filtered: false },
      custom_blocklists: { filtered: false, details: [] },
    },
    content_filter_results: filterResults(false),
  };
}

export function emulatorDirectiveError(message: string): EmulatorHttpError {
  return invalidRequest(message, null, 'invalid_emulator_directive');
}

export function internalError(): EmulatorHttpError {
  return new EmulatorHttpError(500, { error: { code: 'InternalServerError', message: 'The emulator failed unexpectedly; see its log.' } });
}

export function nowInSeconds(): number {
  return Math.floor(Date.now() / 1000);
}
