import { z } from 'zod';

import { ConfigurationError } from './domain/errors';
import type { ImageModel } from './domain/image-models';
import { IMAGE_MODELS, isImageModel } from './domain/image-models';

/**
 * The app's whole configuration, read from app settings (environment variables) once and checked in
 * one pass: a bad deployment fails at start-up with every problem listed. Nothing else reads process.env.
 */
export interface AppConfig {
  readonly openai: {
    readonly endpoint: string;
    readonly apiFlavor: 'deployment' | 'v1';
    readonly apiVersion: string;
    /** Allowed model names and the deployment that serves each. */
    readonly deployments: ReadonlyMap<ImageModel, string>;
    readonly defaultModel: ImageModel;
    readonly auth: { readonly mode: 'managed-identity' } | { readonly mode: 'key'; readonly apiKey: string };
    readonly timeoutInMs: number;
    readonly maxRetries: number;
  };
  /** User-assigned managed identity; unset means system-assigned (or a developer's own login locally). */
  readonly managedIdentityClientId: string | undefined;
  readonly storage: {
    readonly connection: { readonly kind: 'connection-string'; readonly connectionString: string } | { readonly kind: 'identity'; readonly blobServiceUri: string };
    readonly containers: { readonly images: string };
    readonly sasLifetimeInMs: number;
  };
  readonly limits: { readonly maxJsonBodyBytes: number };
}

export const OPENAI_SCOPE = 'https://cognitiveservices.azure.com/.default';
const MAX_SAS_MINUTES = 7 * 24 * 60;

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
  MAX_JSON_BODY_BYTES: integer('MAX_JSON_BODY_BYTES', 1024, 200 * 1024 * 1024, 1024 * 1024),
});

/** Reads the configuration; throws ConfigurationError naming every missing or invalid setting. */
export function loadConfig(env: Readonly<Record<string, string | undefined>>): AppConfig {
  const parsed = environmentSchema.safeParse(env);
  const problems = parsed.success ? [] : parsed.error.issues.map((issue) => issue.message);
  // The checks across settings read the raw text, so they are reported even when a field is malformed.
  const text = (name: string) => env[name]?.trim() || undefined;

  if (!text('AZURE_OPENAI_ENDPOINT')) {
    problems.push('AZURE_OPENAI_ENDPOINT is required (for example https://my-resource.openai.azure.com).');
  }

  const deployments = parseDeployments(text('AZURE_OPENAI_DEPLOYMENTS'), problems);
  const defaultModel = text('AZURE_OPENAI_DEFAULT_MODEL') ?? deployments.keys().next().value;
  if (defaultModel !== undefined && !(isImageModel(defaultModel) && deployments.has(defaultModel))) {
    problems.push(`AZURE_OPENAI_DEFAULT_MODEL '${defaultModel}' must be one of the models in AZURE_OPENAI_DEPLOYMENTS.`);
  }

  if (text('AZURE_OPENAI_AUTH') === 'key' && !text('AZURE_OPENAI_API_KEY')) {
    problems.push('AZURE_OPENAI_API_KEY is required when AZURE_OPENAI_AUTH is key (in Azure, a Key Vault reference).');
  }

  const connectionString = text('ImagesStorage');
  const blobServiceUri = text('ImagesStorage__blobServiceUri') ?? text('ImagesStorage__serviceUri');
  if (connectionString && blobServiceUri) {
    problems.push('Set either ImagesStorage (a connection string) or ImagesStorage__blobServiceUri (managed identity), not both.');
  } else if (!connectionString && !blobServiceUri) {
    problems.push('Set ImagesStorage to a connection string (locally) or ImagesStorage__blobServiceUri to the blob endpoint (in Azure).');
  } else if (blobServiceUri && !URL.canParse(blobServiceUri)) {
    problems.push('ImagesStorage__blobServiceUri must be a URL such as https://myaccount.blob.core.windows.net.');
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
      defaultModel,
      auth:
        settings.AZURE_OPENAI_AUTH === 'key'
          ? { mode: 'key' as const, apiKey: settings.AZURE_OPENAI_API_KEY ?? '' }
          : { mode: 'managed-identity' as const },
      timeoutInMs: settings.AZURE_OPENAI_TIMEOUT_MS,
      maxRetries: settings.AZURE_OPENAI_MAX_RETRIES,
    },
    managedIdentityClientId: settings.AZURE_CLIENT_ID,
    storage: {
      connection: connectionString
        ? { kind: 'connection-string' as const, connectionString }
        : { kind: 'identity' as const, blobServiceUri: (blobServiceUri ?? '').replace(/\/+$/, '') },
      containers: { images: settings.IMAGES_CONTAINER },
      sasLifetimeInMs: settings.IMAGES_SAS_TTL_MINUTES * 60_000,
    },
    limits: { maxJsonBodyBytes: settings.MAX_JSON_BODY_BYTES },
  });
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
