import { z } from 'zod';

import type { BudgetRule } from './domain/budgets';
import { budgetRulesSchema } from './domain/budgets';
import type { BackendProfile } from './domain/backend-router';
import { ConfigurationError } from './domain/errors';
import type { ImageModel } from './domain/image-models';
import { IMAGE_MODELS, isImageModel } from './domain/image-models';
import type { ModelPrices, PriceTable } from './domain/pricing';
import { DEFAULT_PRICE_TABLE } from './domain/pricing';

/**
 * The app's whole configuration, read from app settings (environment variables) once and checked in
 * one pass: a bad deployment fails at start-up with every problem listed. Nothing else reads process.env.
 */
export interface AppConfig {
  readonly openai: {
    readonly endpoint: string;
    readonly apiFlavor: 'deployment' | 'v1';
    readonly apiVersion: string;
    /** Allowed model names and the deployment that serves each (the first of its backends). */
    readonly deployments: ReadonlyMap<ImageModel, string>;
    /** Every deployment that serves a model: one per AZURE_OPENAI_DEPLOYMENTS entry on AZURE_OPENAI_ENDPOINT, and AZURE_OPENAI_BACKENDS. */
    readonly backends: readonly BackendConfig[];
    readonly defaultModel: ImageModel;
    readonly auth: OpenAIAuth;
    readonly timeoutInMs: number;
    readonly maxRetries: number;
  };
  /** User-assigned managed identity; unset means system-assigned (or a developer's own login locally). */
  readonly managedIdentityClientId: string | undefined;
  readonly storage: {
    readonly connection:
      | { readonly kind: 'connection-string'; readonly connectionString: string }
      | { readonly kind: 'identity'; readonly blobServiceUri: string; readonly queueServiceUri: string; readonly tableServiceUri: string };
    /** `images` holds results of API calls, `inbox` is watched by the blob trigger, `outputs` gets its results, `jobs` holds job records and inputs. */
    readonly containers: { readonly images: string; readonly inbox: string; readonly outputs: string; readonly jobs: string };
    /** `jobs` feeds the job worker; `callbacks` holds the deliveries of callbacks, each with its own retry schedule. */
    /** `usage` takes the usage records the usage table refused, to be written again later. */
    readonly queues: { readonly jobs: string; readonly callbacks: string; readonly usage: string };
    readonly sasLifetimeInMs: number;
  };
  readonly limits: {
    readonly maxJsonBodyBytes: number;
    readonly maxEditImageBytes: number;
    readonly maxEditMaskBytes: number;
    /** The whole edit request (multipart or JSON with base64 images). */
    readonly maxEditBodyBytes: number;
  };
  readonly jobs: {
    /** What `Retry-After` tells a poller while a job is pending. */
    readonly retryAfterSeconds: number;
    /** A job that has spent this long running (waiting in the queue does not count) ends as JobTimedOut. */
    readonly maxRunInMs: number;
    /** From submission: a job not done by then ends (QuotaExhausted when it was waiting for capacity, else JobTimedOut). */
    readonly deadlineInMs: number;
    /** How long a worker owns a running job between renewals; a dead worker's job is taken over after it. */
    readonly leaseInMs: number;
    /** How long an `Idempotency-Key` keeps answering with the job it first created. */
    readonly idempotencyWindowInMs: number;
    /**
     * HMAC secrets for the access tokens of idempotent and blob-triggered jobs: the first derives new
     * tokens, every one is tried when a replay hands a token out again. Empty when none is configured
     * (allowed outside Azure only; the composition root then makes one for the process).
     */
    readonly tokenSecrets: readonly string[];
  };
  /**
   * Scheme, host and optional path prefix under which callers reach the app (no trailing slash);
   * absolute links (job URLs, the OpenAPI host) are built from it, never from the request's Host or
   * X-Forwarded-* headers. Undefined when neither PUBLIC_BASE_URL nor WEBSITE_HOSTNAME says.
   */
  readonly publicBaseUrl: string | undefined;
  /** Inbox folder name → the edit applied to every image dropped under it. */
  readonly inboxPresets: ReadonlyMap<string, InboxPreset>;
  readonly callers: {
    /**
     * `key`: function keys only, and sign-in headers are refused (nothing vouches for them);
     * `key+entra`: function keys, and App Service Authentication adds who signed in, when someone did;
     * `entra`: sign-in required (App Service Authentication), no function key.
     */
    readonly auth: CallerAuth;
    /** The app role (Entra ID) that makes a signed-in principal an admin: GET /api/usage. */
    readonly adminRole: string;
    /** Who a request is charged to when nothing else tells. */
    readonly defaultCaller: string;
  };
  readonly usage: {
    /** The Table Storage table of usage records and budget counters. */
    readonly table: string;
    readonly prices: PriceTable;
    readonly budgets: readonly BudgetRule[];
    /** `log`: one line per request in the Functions log, which the host sends to Application Insights; `off`. */
    readonly telemetry: 'log' | 'off';
  };
  /** Outbound callbacks to URLs callers chose (the HTTP Webhook pattern, the inbox trigger). */
  readonly callbacks: CallbackSettings;
}

export type CallerAuth = 'key' | 'key+entra' | 'entra';

export type OpenAIAuth = { readonly mode: 'managed-identity' } | { readonly mode: 'key'; readonly apiKey: string };

/** One deployment, possibly in another resource or region: where it is, how to sign in, and how the router treats it. */
export interface BackendConfig extends BackendProfile {
  readonly endpoint: string;
  readonly deployment: string;
  readonly auth: OpenAIAuth;
}

export interface CallbackSettings {
  /** Host names a callback may go to: exact names, or `*.suffix` for any name under the suffix. */
  readonly allowedHosts: readonly string[];
  /**
   * The Standard Webhooks signing secret (`whsec_` and base64), which receivers verify the
   * `webhook-signature` header with. Unset outside Azure, the composition root makes one for the
   * process (`per-process`); unset in Azure, callbacks are refused until one is set (`missing`).
   */
  readonly signingSecret: { readonly kind: 'configured'; readonly secret: string } | { readonly kind: 'per-process' } | { readonly kind: 'missing' };
  /** For local development only: also http(s) receivers on loopback addresses. Refused in Azure. */
  readonly allowLoopback: boolean;
}

/**
 * Where Power Automate and Logic Apps callback URLs point: `listCallbackUrl()` and the notification
 * URLs of connector triggers are `https://prod-NN.<region>.logic.azure.com/workflows/...` (Azure
 * public; `.us` and `.cn` in the sovereign clouds), and Power Automate's newer flow endpoints are
 * `https://<environment>.NN.environment.api.powerplatform.com/powerautomate/...`.
 */
export const DEFAULT_CALLBACK_HOSTS = ['*.logic.azure.com', '*.logic.azure.us', '*.logic.azure.cn', '*.environment.api.powerplatform.com'] as const;

export interface InboxPreset {
  readonly prompt: string;
  readonly options: Readonly<Record<string, string | number>>;
}

export const OPENAI_SCOPE = 'https://cognitiveservices.azure.com/.default';
const MAX_SAS_MINUTES = 7 * 24 * 60;

/**
 * Every app setting this module reads, so the infrastructure and the README can be checked against it.
 * `AzureWebJobsStorage` belongs to the Functions host and is not read here.
 */
export const APP_SETTING_NAMES = [
  'AZURE_OPENAI_ENDPOINT',
  'AZURE_OPENAI_API_FLAVOR',
  'AZURE_OPENAI_API_VERSION',
  'AZURE_OPENAI_DEPLOYMENTS',
  'AZURE_OPENAI_BACKENDS',
  'AZURE_OPENAI_DEFAULT_MODEL',
  'AZURE_OPENAI_AUTH',
  'AZURE_OPENAI_API_KEY',
  'AZURE_OPENAI_API_KEYS',
  'AZURE_OPENAI_TIMEOUT_MS',
  'AZURE_OPENAI_MAX_RETRIES',
  'AZURE_CLIENT_ID',
  'ImagesStorage',
  'ImagesStorage__blobServiceUri',
  'ImagesStorage__queueServiceUri',
  'ImagesStorage__serviceUri',
  'IMAGES_CONTAINER',
  'INBOX_CONTAINER',
  'OUTPUTS_CONTAINER',
  'JOBS_CONTAINER',
  'JOBS_QUEUE',
  'IMAGES_SAS_TTL_MINUTES',
  'MAX_JSON_BODY_BYTES',
  'MAX_EDIT_IMAGE_BYTES',
  'MAX_EDIT_MASK_BYTES',
  'MAX_EDIT_BODY_BYTES',
  'JOBS_RETRY_AFTER_SECONDS',
  'JOBS_MAX_RUN_MINUTES',
  'JOBS_DEADLINE_SECONDS',
  'JOBS_LEASE_SECONDS',
  'IDEMPOTENCY_WINDOW_HOURS',
  'INBOX_PRESETS',
  'JOB_TOKEN_SECRET',
  'JOB_TOKEN_PREVIOUS_SECRETS',
  'PUBLIC_BASE_URL',
  'ImagesStorage__tableServiceUri',
  'USAGE_TABLE',
  'PRICE_TABLE',
  'BUDGETS',
  'TELEMETRY',
  'CALLER_AUTH',
  'ADMIN_ROLE',
  'DEFAULT_CALLER',
  'CALLBACKS_QUEUE',
  'USAGE_QUEUE',
  'CALLBACK_ALLOWED_HOSTS',
  'CALLBACK_SIGNING_SECRET',
  'CALLBACK_ALLOW_LOOPBACK',
  // Set by the platform (and by `func start` to localhost:<port>), never by us.
  'WEBSITE_HOSTNAME',
  // Set by the platform to True when App Service Authentication is on for the app.
  'WEBSITE_AUTH_ENABLED',
] as const;

const MIB = 1024 * 1024;
const MIN_TOKEN_SECRET_LENGTH = 32;
const LOCAL_HOST_NAMES = new Set(['localhost', '127.0.0.1', '[::1]', '0.0.0.0']);

const optionalText = z
  .string()
  .transform((value) => value.trim())
  .pipe(z.string())
  .optional()
  .transform((value) => (value === '' ? undefined : value));

const integer = (name: string, min: number, max: number, fallback: number) =>
  optionalText.pipe(
    z
      .string()
      .regex(/^\d+$/, `${name} must be a whole number`)
      .transform(Number)
      .pipe(z.number().min(min, `${name} must be at least ${min}`).max(max, `${name} must be at most ${max}`))
      .optional()
      .transform((value) => value ?? fallback),
  );

// Container names: 3-63 lower-case letters, digits and single hyphens (Azure's rule).
const containerName = (name: string, fallback: string) =>
  optionalText.pipe(
    z
      .string()
      .regex(/^(?!-)(?!.*--)[a-z0-9-]{3,63}(?<!-)$/, `${name} must be a valid container name (3-63 lower-case letters, digits, hyphens)`)
      .optional()
      .transform((value) => value ?? fallback),
  );

const environmentSchema = z.object({
  AZURE_OPENAI_ENDPOINT: optionalText.pipe(
    z.url({ protocol: /^https?$/, message: 'AZURE_OPENAI_ENDPOINT must be an http(s) URL such as https://my-resource.openai.azure.com' }).optional(),
  ),
  AZURE_OPENAI_API_FLAVOR: optionalText.pipe(
    z.enum(['deployment', 'v1'], { message: "AZURE_OPENAI_API_FLAVOR must be 'deployment' or 'v1'" }).optional().transform((value) => value ?? 'deployment'),
  ),
  AZURE_OPENAI_API_VERSION: optionalText.transform((value) => value ?? '2025-04-01-preview'),
  AZURE_OPENAI_AUTH: optionalText.pipe(
    z
      .enum(['managed-identity', 'key'], { message: "AZURE_OPENAI_AUTH must be 'managed-identity' or 'key'" })
      .optional()
      .transform((value) => value ?? 'managed-identity'),
  ),
  AZURE_OPENAI_API_KEY: optionalText,
  AZURE_OPENAI_TIMEOUT_MS: integer('AZURE_OPENAI_TIMEOUT_MS', 1_000, 600_000, 180_000),
  AZURE_OPENAI_MAX_RETRIES: integer('AZURE_OPENAI_MAX_RETRIES', 0, 10, 2),
  AZURE_CLIENT_ID: optionalText,
  IMAGES_CONTAINER: containerName('IMAGES_CONTAINER', 'images'),
  IMAGES_SAS_TTL_MINUTES: integer('IMAGES_SAS_TTL_MINUTES', 1, MAX_SAS_MINUTES, 24 * 60),
  INBOX_CONTAINER: containerName('INBOX_CONTAINER', 'inbox'),
  OUTPUTS_CONTAINER: containerName('OUTPUTS_CONTAINER', 'outputs'),
  JOBS_CONTAINER: containerName('JOBS_CONTAINER', 'jobs'),
  // Queue names follow the container rule.
  JOBS_QUEUE: containerName('JOBS_QUEUE', 'image-jobs'),
  CALLBACKS_QUEUE: containerName('CALLBACKS_QUEUE', 'image-callbacks'),
  USAGE_QUEUE: containerName('USAGE_QUEUE', 'usage-retry'),
  MAX_JSON_BODY_BYTES: integer('MAX_JSON_BODY_BYTES', 1024, 200 * MIB, MIB),
  MAX_EDIT_IMAGE_BYTES: integer('MAX_EDIT_IMAGE_BYTES', 1024, 200 * MIB, 50 * MIB),
  MAX_EDIT_MASK_BYTES: integer('MAX_EDIT_MASK_BYTES', 1024, 200 * MIB, 4 * MIB),
  // The Functions front end refuses bodies over 100 MB anyway.
  MAX_EDIT_BODY_BYTES: integer('MAX_EDIT_BODY_BYTES', 1024, 210 * MIB, 100 * MIB),
  JOBS_RETRY_AFTER_SECONDS: integer('JOBS_RETRY_AFTER_SECONDS', 1, 300, 10),
  JOBS_MAX_RUN_MINUTES: integer('JOBS_MAX_RUN_MINUTES', 1, 24 * 60, 15),
  JOBS_DEADLINE_SECONDS: integer('JOBS_DEADLINE_SECONDS', 5, 7 * 24 * 3600, 3600),
  // Long enough for a renewal (every third of it) to get through a busy instance; short enough for a quick takeover.
  JOBS_LEASE_SECONDS: integer('JOBS_LEASE_SECONDS', 2, 600, 60),
  IDEMPOTENCY_WINDOW_HOURS: integer('IDEMPOTENCY_WINDOW_HOURS', 1, 30 * 24, 24),
  INBOX_PRESETS: optionalText,
  JOB_TOKEN_SECRET: optionalText,
  JOB_TOKEN_PREVIOUS_SECRETS: optionalText,
  PUBLIC_BASE_URL: optionalText,
  WEBSITE_HOSTNAME: optionalText,
  USAGE_TABLE: optionalText.pipe(
    z
      .string()
      .regex(/^[A-Za-z][A-Za-z0-9]{2,62}$/, 'USAGE_TABLE must be a valid table name (3-63 letters and digits, starting with a letter)')
      .optional()
      .transform((value) => value ?? 'usage'),
  ),
  TELEMETRY: optionalText.pipe(
    z.enum(['log', 'off'], { message: "TELEMETRY must be 'log' or 'off'" }).optional().transform((value) => value ?? 'log'),
  ),
  CALLER_AUTH: optionalText.pipe(
    z
      .enum(['key', 'key+entra', 'entra'], { message: "CALLER_AUTH must be 'key', 'key+entra' or 'entra'" })
      .optional()
      .transform((value) => value ?? 'key'),
  ),
  ADMIN_ROLE: optionalText.transform((value) => value ?? 'ImageGen.Admin'),
  DEFAULT_CALLER: optionalText.pipe(
    z.string().max(256, 'DEFAULT_CALLER may be at most 256 characters').optional().transform((value) => value ?? 'unattributed'),
  ),
  CALLBACK_ALLOW_LOOPBACK: optionalText.pipe(
    z
      .enum(['true', 'false'], { message: "CALLBACK_ALLOW_LOOPBACK must be 'true' or 'false'" })
      .optional()
      .transform((value) => value === 'true'),
  ),
});

// `{"product-shots": {"prompt": "...", "size": "1024x1024", "quality": "high"}}`; the options are
// checked per model when a preset is used, like any request's.
const presetsSchema = z.record(
  z.string(),
  z.looseObject({ prompt: z.string().trim().min(1, 'every preset needs a prompt') }).transform(({ prompt, ...options }) => ({
    prompt,
    options: Object.fromEntries(Object.entries(options).filter((entry): entry is [string, string | number] => ['string', 'number'].includes(typeof entry[1]))),
  })),
);

/** Reads the configuration; throws ConfigurationError naming every missing or invalid setting. */
export function loadConfig(env: Readonly<Record<string, string | undefined>>): AppConfig {
  const parsed = environmentSchema.safeParse(env);
  const problems = parsed.success ? [] : parsed.error.issues.map((issue) => issue.message);
  // The checks across settings read the raw text, so they are reported even when a field is malformed.
  const text = (name: string) => env[name]?.trim() || undefined;

  if (!text('AZURE_OPENAI_ENDPOINT')) {
    problems.push('AZURE_OPENAI_ENDPOINT is required (for example https://my-resource.openai.azure.com).');
  }

  const primaryDeployments = parseDeployments(text('AZURE_OPENAI_DEPLOYMENTS'), problems);
  if (text('AZURE_OPENAI_AUTH') === 'key' && !text('AZURE_OPENAI_API_KEY')) {
    problems.push('AZURE_OPENAI_API_KEY is required when AZURE_OPENAI_AUTH is key (in Azure, a Key Vault reference).');
  }
  const endpointText = text('AZURE_OPENAI_ENDPOINT');
  const backends = parseBackends(endpointText && URL.canParse(endpointText) ? endpointText : undefined, primaryDeployments, env, problems);
  const deployments = new Map<ImageModel, string>();
  for (const backend of [...backends].sort((a, b) => a.priority - b.priority)) {
    if (!deployments.has(backend.model)) deployments.set(backend.model, backend.deployment);
  }
  const defaultModel = text('AZURE_OPENAI_DEFAULT_MODEL') ?? primaryDeployments.keys().next().value;
  const served = new Set<string>([...primaryDeployments.keys(), ...deployments.keys()]);
  if (defaultModel !== undefined && !served.has(defaultModel)) {
    problems.push(`AZURE_OPENAI_DEFAULT_MODEL '${defaultModel}' must be one of the models in AZURE_OPENAI_DEPLOYMENTS or AZURE_OPENAI_BACKENDS.`);
  }

  const connectionString = text('ImagesStorage');
  const blobServiceUri = text('ImagesStorage__blobServiceUri') ?? text('ImagesStorage__serviceUri');
  const queueServiceUri = text('ImagesStorage__queueServiceUri');
  if (connectionString && blobServiceUri) {
    problems.push('Set either ImagesStorage (a connection string) or ImagesStorage__blobServiceUri (managed identity), not both.');
  } else if (!connectionString && !blobServiceUri) {
    problems.push('Set ImagesStorage to a connection string (locally) or ImagesStorage__blobServiceUri to the blob endpoint (in Azure).');
  } else if (blobServiceUri && !URL.canParse(blobServiceUri)) {
    problems.push('ImagesStorage__blobServiceUri must be a URL such as https://myaccount.blob.core.windows.net.');
  }
  if (!connectionString && blobServiceUri && !queueServiceUri) {
    problems.push('ImagesStorage__queueServiceUri is required with ImagesStorage__blobServiceUri (the job queue lives in the same account).');
  } else if (queueServiceUri && !URL.canParse(queueServiceUri)) {
    problems.push('ImagesStorage__queueServiceUri must be a URL such as https://myaccount.queue.core.windows.net.');
  }

  const tableServiceUri = parseTableServiceUri(text('ImagesStorage__tableServiceUri'), connectionString ? undefined : blobServiceUri, problems);
  const callerAuth = text('CALLER_AUTH');
  if ((callerAuth === 'entra' || callerAuth === 'key+entra') && runsInAzure(text('WEBSITE_HOSTNAME')) && text('WEBSITE_AUTH_ENABLED')?.toLowerCase() !== 'true') {
    problems.push(
      `CALLER_AUTH is ${callerAuth}, but App Service Authentication is off (WEBSITE_AUTH_ENABLED is not True): the sign-in headers it would vouch for could be forged. Turn it on (see README "Callers") or set CALLER_AUTH to key.`,
    );
  }
  const prices = parsePriceTable(text('PRICE_TABLE'), problems);
  const budgets = parseBudgets(text('BUDGETS'), problems);
  const inboxPresets = parsePresets(text('INBOX_PRESETS'), problems);
  const publicBaseUrl = parsePublicBaseUrl(text('PUBLIC_BASE_URL'), text('WEBSITE_HOSTNAME'), problems);
  const tokenSecrets = parseTokenSecrets(text('JOB_TOKEN_SECRET'), text('JOB_TOKEN_PREVIOUS_SECRETS'), runsInAzure(text('WEBSITE_HOSTNAME')), problems);
  const allowedHosts = parseAllowedHosts(text('CALLBACK_ALLOWED_HOSTS'), problems);
  const configuredSigningSecret = parseSigningSecret(text('CALLBACK_SIGNING_SECRET'), problems);
  const signingSecret =
    configuredSigningSecret !== undefined
      ? { kind: 'configured' as const, secret: configuredSigningSecret }
      : { kind: runsInAzure(text('WEBSITE_HOSTNAME')) ? ('missing' as const) : ('per-process' as const) };
  if (text('CALLBACK_ALLOW_LOOPBACK')?.toLowerCase() === 'true' && runsInAzure(text('WEBSITE_HOSTNAME'))) {
    problems.push('CALLBACK_ALLOW_LOOPBACK is for local development only and must not be set in Azure.');
  }

  const endpoint = parsed.data?.AZURE_OPENAI_ENDPOINT;
  if (!parsed.success || problems.length > 0 || !endpoint || defaultModel === undefined || !isImageModel(defaultModel)) {
    throw new ConfigurationError(problems);
  }
  const settings = parsed.data;

  return Object.freeze({
    openai: {
      endpoint: endpoint.replace(/\/+$/, ''),
      apiFlavor: settings.AZURE_OPENAI_API_FLAVOR,
      apiVersion: settings.AZURE_OPENAI_API_VERSION,
      deployments,
      backends,
      defaultModel,
      auth: primaryAuth(env),
      timeoutInMs: settings.AZURE_OPENAI_TIMEOUT_MS,
      maxRetries: settings.AZURE_OPENAI_MAX_RETRIES,
    },
    managedIdentityClientId: settings.AZURE_CLIENT_ID,
    storage: {
      connection: connectionString
        ? { kind: 'connection-string' as const, connectionString }
        : {
            kind: 'identity' as const,
            blobServiceUri: (blobServiceUri ?? '').replace(/\/+$/, ''),
            queueServiceUri: (queueServiceUri ?? '').replace(/\/+$/, ''),
            tableServiceUri: tableServiceUri ?? '',
          },
      containers: {
        images: settings.IMAGES_CONTAINER,
        inbox: settings.INBOX_CONTAINER,
        outputs: settings.OUTPUTS_CONTAINER,
        jobs: settings.JOBS_CONTAINER,
      },
      queues: { jobs: settings.JOBS_QUEUE, callbacks: settings.CALLBACKS_QUEUE, usage: settings.USAGE_QUEUE },
      sasLifetimeInMs: settings.IMAGES_SAS_TTL_MINUTES * 60_000,
    },
    limits: {
      maxJsonBodyBytes: settings.MAX_JSON_BODY_BYTES,
      maxEditImageBytes: settings.MAX_EDIT_IMAGE_BYTES,
      maxEditMaskBytes: settings.MAX_EDIT_MASK_BYTES,
      maxEditBodyBytes: settings.MAX_EDIT_BODY_BYTES,
    },
    jobs: {
      retryAfterSeconds: settings.JOBS_RETRY_AFTER_SECONDS,
      maxRunInMs: settings.JOBS_MAX_RUN_MINUTES * 60_000,
      deadlineInMs: settings.JOBS_DEADLINE_SECONDS * 1000,
      leaseInMs: settings.JOBS_LEASE_SECONDS * 1000,
      idempotencyWindowInMs: settings.IDEMPOTENCY_WINDOW_HOURS * 3_600_000,
      tokenSecrets,
    },
    publicBaseUrl,
    inboxPresets,
    callers: { auth: settings.CALLER_AUTH, adminRole: settings.ADMIN_ROLE, defaultCaller: settings.DEFAULT_CALLER },
    usage: { table: settings.USAGE_TABLE, prices, budgets, telemetry: settings.TELEMETRY },
    callbacks: { allowedHosts, signingSecret, allowLoopback: settings.CALLBACK_ALLOW_LOOPBACK },
  });
}

/**
 * The host checks keys before the app runs, so the auth level is fixed when a function is registered:
 * `entra` leaves key checks off (App Service Authentication admits callers, and the app requires a
 * principal); otherwise image routes take a function key and admin routes the master key. Read from
 * the environment at registration; a wrong value is reported by loadConfig like any other.
 */
export function routeAuthLevel(route: 'caller' | 'admin', env: Readonly<Record<string, string | undefined>> = process.env): 'anonymous' | 'function' | 'admin' {
  if (env['CALLER_AUTH']?.trim() === 'entra') return 'anonymous';
  return route === 'admin' ? 'admin' : 'function';
}

/** The table endpoint for managed identity: as set, or the blob endpoint's account with `.table.` (the standard host names). */
function parseTableServiceUri(configured: string | undefined, blobServiceUri: string | undefined, problems: string[]): string | undefined {
  if (configured !== undefined) {
    if (!URL.canParse(configured)) problems.push('ImagesStorage__tableServiceUri must be a URL such as https://myaccount.table.core.windows.net.');
    return configured.replace(/\/+$/, '');
  }
  if (blobServiceUri === undefined || !URL.canParse(blobServiceUri)) return undefined;
  const url = new URL(blobServiceUri);
  if (!/^[^.]+\.blob\./.test(url.hostname)) {
    problems.push('ImagesStorage__tableServiceUri is required when the blob endpoint is not a standard *.blob.* host name (the usage table lives in the same account).');
    return undefined;
  }
  url.hostname = url.hostname.replace('.blob.', '.table.');
  return url.origin;
}

const priceSchema = z.number({ error: 'prices must be numbers' }).nonnegative('prices must not be negative');
const priceTableSchema = z.strictObject({
  asOf: z.string({ error: 'asOf is required: the day the prices were read (YYYY-MM-DD)' }).regex(/^\d{4}-\d{2}-\d{2}$/, 'asOf must be a day, YYYY-MM-DD'),
  currency: z.string().regex(/^[A-Z]{3}$/, 'currency must be a three-letter code such as USD').optional(),
  models: z.partialRecord(
    z.enum(IMAGE_MODELS, { error: `models are named ${IMAGE_MODELS.join(', ')}` }),
    z.strictObject({
      textInput: priceSchema.optional(),
      imageInput: priceSchema.optional(),
      imageOutput: priceSchema.optional(),
      textOutput: priceSchema.optional(),
      perImage: z.record(z.string(), priceSchema).optional(),
    }),
  ),
});

/** PRICE_TABLE overrides the default prices per model and field (per million tokens), with its own date. */
function parsePriceTable(value: string | undefined, problems: string[]): PriceTable {
  if (!value) return DEFAULT_PRICE_TABLE;
  let json: unknown;
  try {
    json = JSON.parse(value);
  } catch {
    problems.push('PRICE_TABLE must be JSON such as {"asOf": "2026-12-01", "models": {"gpt-image-1.5": {"imageOutput": 32}}}.');
    return DEFAULT_PRICE_TABLE;
  }
  const parsed = priceTableSchema.safeParse(json);
  if (!parsed.success) {
    problems.push(...parsed.error.issues.map((issue) => `PRICE_TABLE${issue.path.map((key) => `.${String(key)}`).join('')}: ${issue.message}`));
    return DEFAULT_PRICE_TABLE;
  }
  const models = { ...DEFAULT_PRICE_TABLE.models };
  for (const [model, prices] of Object.entries(parsed.data.models) as [ImageModel, Partial<ModelPrices>][]) {
    models[model] = { ...models[model], ...Object.fromEntries(Object.entries(prices).filter(([, price]) => price !== undefined)) };
  }
  return { asOf: parsed.data.asOf, currency: parsed.data.currency ?? DEFAULT_PRICE_TABLE.currency, models };
}

function parseBudgets(value: string | undefined, problems: string[]): BudgetRule[] {
  if (!value) return [];
  let json: unknown;
  try {
    json = JSON.parse(value);
  } catch {
    problems.push('BUDGETS must be JSON such as [{"caller": "user:*", "daily": {"images": 50}, "monthly": {"cost": 20}}].');
    return [];
  }
  const parsed = budgetRulesSchema.safeParse(json);
  if (!parsed.success) {
    problems.push(...parsed.error.issues.map((issue) => `BUDGETS${issue.path.map((key) => (typeof key === 'number' ? `[${key}]` : `.${String(key)}`)).join('')}: ${issue.message}`));
    return [];
  }
  return parsed.data;
}

/** Azure sets WEBSITE_HOSTNAME to the app's host name; `func start` sets it to localhost:<port>. */
function runsInAzure(websiteHostname: string | undefined): boolean {
  return websiteHostname !== undefined && URL.canParse(`http://${websiteHostname}`) && !LOCAL_HOST_NAMES.has(new URL(`http://${websiteHostname}`).hostname);
}

/** PUBLIC_BASE_URL as given, else https://WEBSITE_HOSTNAME (http for a loopback host, as `func start` gives it). */
function parsePublicBaseUrl(configured: string | undefined, websiteHostname: string | undefined, problems: string[]): string | undefined {
  if (configured !== undefined) {
    const url = URL.canParse(configured) ? new URL(configured) : undefined;
    if (!url || !['http:', 'https:'].includes(url.protocol) || url.search !== '' || url.hash !== '' || url.username !== '' || url.password !== '') {
      problems.push('PUBLIC_BASE_URL must be an http(s) URL without query, fragment or credentials, such as https://images.contoso.com.');
      return undefined;
    }
    return `${url.origin}${url.pathname}`.replace(/\/+$/, '');
  }
  if (websiteHostname === undefined) return undefined;
  if (!URL.canParse(`http://${websiteHostname}`) || new URL(`http://${websiteHostname}`).host !== websiteHostname.toLowerCase()) {
    problems.push('WEBSITE_HOSTNAME must be a host name (with an optional port), such as myapp.azurewebsites.net; set PUBLIC_BASE_URL to override it.');
    return undefined;
  }
  return `${runsInAzure(websiteHostname) ? 'https' : 'http'}://${websiteHostname.toLowerCase()}`;
}

/** The current secret first, then the previous ones still accepted for replays. */
function parseTokenSecrets(current: string | undefined, previous: string | undefined, inAzure: boolean, problems: string[]): string[] {
  const earlier = (previous ?? '').split(',').map((secret) => secret.trim()).filter(Boolean);
  if (current === undefined) {
    if (inAzure) {
      problems.push(
        `JOB_TOKEN_SECRET is required in Azure (a Key Vault reference to a random secret of at least ${MIN_TOKEN_SECRET_LENGTH} characters): every instance must derive the same job links.`,
      );
    }
    if (earlier.length > 0) problems.push('JOB_TOKEN_PREVIOUS_SECRETS needs JOB_TOKEN_SECRET: the previous secrets only verify, the current one signs.');
    return [];
  }
  const secrets = [current, ...earlier];
  // The platform leaves a reference it could not resolve in place, and its text would pass as a secret.
  if (secrets.some((secret) => /^@Microsoft\.KeyVault\(/i.test(secret))) {
    problems.push('JOB_TOKEN_SECRET or JOB_TOKEN_PREVIOUS_SECRETS is a Key Vault reference the platform could not resolve; check the secret and the app identity\'s access to the vault.');
  } else if (secrets.some((secret) => secret.length < MIN_TOKEN_SECRET_LENGTH)) {
    problems.push(`JOB_TOKEN_SECRET and each of JOB_TOKEN_PREVIOUS_SECRETS must be at least ${MIN_TOKEN_SECRET_LENGTH} characters (for example \`openssl rand -base64 48\`).`);
  }
  return secrets;
}

const HOST_PATTERN = /^(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)+$/;

/** `*.logic.azure.com,hooks.contoso.com`: host names or `*.` suffixes, never IP addresses or a bare `*`. */
function parseAllowedHosts(value: string | undefined, problems: string[]): string[] {
  if (value === undefined) return [...DEFAULT_CALLBACK_HOSTS];
  const hosts = value.split(',').map((host) => host.trim().toLowerCase()).filter(Boolean);
  const bad = hosts.filter((host) => !HOST_PATTERN.test(host) || /^(\*\.)?[\d.]+$/.test(host));
  if (bad.length > 0) {
    problems.push(`CALLBACK_ALLOWED_HOSTS must list host names or *.suffixes (such as *.logic.azure.com), not ${bad.map((host) => `'${host}'`).join(', ')}.`);
  }
  return hosts;
}

const MIN_SIGNING_KEY_BYTES = 24;

/** A Standard Webhooks secret: `whsec_` and the base64 of 24-64 random bytes. */
function parseSigningSecret(value: string | undefined, problems: string[]): string | undefined {
  if (value === undefined) return undefined;
  if (/^@Microsoft\.KeyVault\(/i.test(value)) {
    problems.push("CALLBACK_SIGNING_SECRET is a Key Vault reference the platform could not resolve; check the secret and the app identity's access to the vault.");
    return undefined;
  }
  const key = /^whsec_([A-Za-z0-9+/]+={0,2})$/.exec(value)?.[1];
  const bytes = key === undefined ? 0 : Buffer.from(key, 'base64').length;
  if (bytes < MIN_SIGNING_KEY_BYTES || bytes > 64) {
    problems.push(`CALLBACK_SIGNING_SECRET must be whsec_ followed by the base64 of ${MIN_SIGNING_KEY_BYTES}-64 random bytes (for example \`echo whsec_$(openssl rand -base64 32)\`).`);
    return undefined;
  }
  return value;
}

function parsePresets(value: string | undefined, problems: string[]): Map<string, InboxPreset> {
  if (!value) return new Map();
  let json: unknown;
  try {
    json = JSON.parse(value);
  } catch {
    problems.push('INBOX_PRESETS must be JSON such as {"product-shots": {"prompt": "...", "size": "1024x1024"}}.');
    return new Map();
  }
  const parsed = presetsSchema.safeParse(json);
  const badNames = parsed.success ? Object.keys(parsed.data).filter((name) => !/^[A-Za-z0-9._-]{1,128}$/.test(name)) : [];
  if (badNames.length > 0) {
    problems.push(`INBOX_PRESETS names ${badNames.map((name) => `'${name}'`).join(', ')}: preset names must be folder names (letters, digits, . _ -).`);
    return new Map();
  }
  if (!parsed.success) {
    problems.push(...parsed.error.issues.map((issue) => `INBOX_PRESETS${issue.path.map((key) => `.${String(key)}`).join('')}: ${issue.message}`));
    return new Map();
  }
  return new Map(Object.entries(parsed.data));
}

/** `gpt-image-1.5=my-deployment,gpt-image-2` (a bare model name is served by a deployment of the same name). */
function parseDeployments(value: string | undefined, problems: string[]): Map<ImageModel, string> {
  const deployments = new Map<ImageModel, string>();
  if (!value) {
    problems.push(`AZURE_OPENAI_DEPLOYMENTS is required: comma-separated model=deployment pairs, models from ${IMAGE_MODELS.join(', ')}.`);
    return deployments;
  }
  for (const entry of value.split(',').map((part) => part.trim()).filter(Boolean)) {
    const [model = '', deployment = model] = entry.split('=').map((part) => part.trim());
    if (!isImageModel(model)) {
      problems.push(`AZURE_OPENAI_DEPLOYMENTS names unknown model '${model}'; known models: ${IMAGE_MODELS.join(', ')}.`);
    } else if (!/^[A-Za-z0-9._-]{1,64}$/.test(deployment)) {
      problems.push(`AZURE_OPENAI_DEPLOYMENTS has an invalid deployment name '${deployment}' for ${model}.`);
    } else {
      deployments.set(model, deployment);
    }
  }
  return deployments;
}

function primaryAuth(env: Readonly<Record<string, string | undefined>>): OpenAIAuth {
  return env['AZURE_OPENAI_AUTH']?.trim() === 'key' ? { mode: 'key', apiKey: env['AZURE_OPENAI_API_KEY']?.trim() ?? '' } : { mode: 'managed-identity' };
}

const DEPLOYMENT_NAME = /^[A-Za-z0-9._-]{1,64}$/;
const wholeNumberFrom1 = (name: string, max: number) =>
  z.number({ message: `${name} must be a number` }).int(`${name} must be a whole number`).min(1, `${name} must be at least 1`).max(max, `${name} must be at most ${max}`);

const backendSchema = z
  .strictObject({
    name: z.string().regex(/^[A-Za-z0-9._:/-]{1,100}$/, 'name: letters, digits and . _ : / - (at most 100)').optional(),
    endpoint: z.url({ protocol: /^https?$/, message: 'endpoint must be an http(s) URL such as https://my-other-resource.openai.azure.com' }).optional(),
    deployment: z.string().regex(DEPLOYMENT_NAME, 'deployment: letters, digits and . _ - (at most 64)').optional(),
    model: z.enum(IMAGE_MODELS, { message: `model must be one of ${IMAGE_MODELS.join(', ')}` }),
    auth: z.enum(['managed-identity', 'key'], { message: "auth must be 'managed-identity' or 'key'" }).optional(),
    priority: wholeNumberFrom1('priority', 1000).optional(),
    weight: wholeNumberFrom1('weight', 1000).optional(),
    imagesPerMinute: wholeNumberFrom1('imagesPerMinute', 1_000_000).optional(),
    requestsPerMinute: wholeNumberFrom1('requestsPerMinute', 1_000_000).optional(),
  })
  .refine((backend) => backend.imagesPerMinute === undefined || backend.requestsPerMinute === undefined, 'give imagesPerMinute or requestsPerMinute, not both');

const apiKeysSchema = z.record(z.string(), z.string().trim().min(1, 'every key must be non-empty'));

const BACKENDS_EXAMPLE =
  '[{"endpoint": "https://other.openai.azure.com", "deployment": "img15", "model": "gpt-image-1.5", "priority": 1, "weight": 1, "imagesPerMinute": 5}]';

/**
 * The backends: one per AZURE_OPENAI_DEPLOYMENTS entry on AZURE_OPENAI_ENDPOINT (priority 1, weight 1),
 * then AZURE_OPENAI_BACKENDS. A listed backend with the endpoint and deployment of one of the first
 * replaces it, which is how the primary deployments get a priority, a weight or a known quota.
 */
function parseBackends(
  primaryEndpoint: string | undefined,
  primaryDeployments: ReadonlyMap<ImageModel, string>,
  env: Readonly<Record<string, string | undefined>>,
  problems: string[],
): BackendConfig[] {
  const endpointOf = (url: string) => url.replace(/\/+$/, '');
  const nameOf = (endpoint: string, deployment: string) => `${URL.canParse(endpoint) ? new URL(endpoint).host : endpoint}/${deployment}`;
  const auth = primaryAuth(env);
  const backends: BackendConfig[] = [];
  if (primaryEndpoint !== undefined) {
    for (const [model, deployment] of primaryDeployments) {
      const endpoint = endpointOf(primaryEndpoint);
      backends.push({ name: nameOf(endpoint, deployment), endpoint, deployment, model, auth, priority: 1, weight: 1 });
    }
  }

  const listed = jsonSetting(env, 'AZURE_OPENAI_BACKENDS', `a JSON array such as ${BACKENDS_EXAMPLE}`, problems);
  if (listed === undefined) return backends;
  const parsed = z.array(backendSchema).max(50, 'at most 50 backends').safeParse(listed);
  if (!parsed.success) {
    problems.push(...parsed.error.issues.map((issue) => `AZURE_OPENAI_BACKENDS${issue.path.map((key) => (typeof key === 'number' ? `[${key}]` : `.${String(key)}`)).join('')}: ${issue.message}`));
    return backends;
  }
  const keys = apiKeysSchema.safeParse(jsonSetting(env, 'AZURE_OPENAI_API_KEYS', 'a JSON object of backend name → API key', problems) ?? {});
  if (!keys.success) problems.push('AZURE_OPENAI_API_KEYS must be a JSON object of backend name → API key (non-empty strings).');

  for (const [index, entry] of parsed.data.entries()) {
    const where = `AZURE_OPENAI_BACKENDS[${index}]`;
    const endpoint = entry.endpoint === undefined ? primaryEndpoint && endpointOf(primaryEndpoint) : endpointOf(entry.endpoint);
    if (endpoint === undefined) continue; // AZURE_OPENAI_ENDPOINT is missing, which is reported already
    const deployment = entry.deployment ?? entry.model;
    const name = entry.name ?? nameOf(endpoint, deployment);
    const replaced = backends.findIndex((backend) => backend.endpoint === endpoint && backend.deployment === deployment);
    const primary = replaced >= 0 ? backends[replaced] : undefined;
    if (primary && primary.model !== entry.model) {
      problems.push(`${where} says ${deployment} serves ${entry.model}, but AZURE_OPENAI_DEPLOYMENTS says ${primary.model}.`);
      continue;
    }
    let backendAuth: OpenAIAuth = auth;
    if (entry.auth === 'managed-identity') backendAuth = { mode: 'managed-identity' };
    if ((entry.auth ?? auth.mode) === 'key') {
      // A resource of its own has a key of its own; the primary resource's key serves its other deployments.
      const apiKey = (keys.success ? keys.data[name] : undefined) ?? (endpoint === (primaryEndpoint && endpointOf(primaryEndpoint)) ? env['AZURE_OPENAI_API_KEY']?.trim() : undefined);
      if (!apiKey) {
        problems.push(`${where} (${name}) uses key auth: put its key in AZURE_OPENAI_API_KEYS as {"${name}": "..."} (in Azure, a Key Vault reference), or use managed-identity.`);
        continue;
      }
      backendAuth = { mode: 'key', apiKey };
    }
    const quota =
      entry.imagesPerMinute !== undefined
        ? { unit: 'images' as const, perMinute: entry.imagesPerMinute }
        : entry.requestsPerMinute !== undefined
          ? { unit: 'requests' as const, perMinute: entry.requestsPerMinute }
          : undefined;
    const backend: BackendConfig = {
      name,
      endpoint,
      deployment,
      model: entry.model,
      auth: backendAuth,
      priority: entry.priority ?? 1,
      weight: entry.weight ?? 1,
      ...(quota ? { quota } : {}),
    };
    if (replaced >= 0) backends[replaced] = backend;
    else backends.push(backend);
  }
  const names = backends.map((backend) => backend.name);
  const duplicates = [...new Set(names.filter((name, index) => names.indexOf(name) !== index))];
  if (duplicates.length > 0) problems.push(`Backend names must be unique; ${duplicates.map((name) => `'${name}'`).join(', ')} appear twice (give each a "name").`);
  return backends;
}

/** A setting that holds JSON; undefined when unset or unreadable (then a problem says so). */
function jsonSetting(env: Readonly<Record<string, string | undefined>>, name: string, shape: string, problems: string[]): unknown {
  const value = env[name]?.trim();
  if (!value) return undefined;
  try {
    return JSON.parse(value) as unknown;
  } catch {
    problems.push(`${name} must be ${shape}.`);
    return undefined;
  }
}
