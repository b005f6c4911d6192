/**
 * The API routes the emulator answers (image-api.md §2.1, §10): the Azure deployment-scoped ("dated")
 * paths, the Azure v1 paths and the OpenAI paths, for generations and edits.
 */

export type ApiFlavour = 'azure-deployment' | 'azure-v1' | 'openai';
export type ImageOperation = 'generations' | 'edits';

export interface ApiRoute {
  readonly flavour: ApiFlavour;
  readonly operation: ImageOperation;
  /** Deployment named in the path (dated API only; v1 and OpenAI name it in the body). */
  readonly pathDeployment?: string;
  readonly apiVersion?: string;
}

const DEPLOYMENT_PATH = /^\/openai\/deployments\/([^/]+)\/images\/(generations|edits)\/?$/;
const AZURE_V1_PATH = /^\/openai\/v1\/images\/(generations|edits)\/?$/;
const OPENAI_PATH = /^\/v1\/images\/(generations|edits)\/?$/;

/** The route for an API request, or undefined when nothing matches (the caller answers 404). */
export function matchApiRoute(method: string, url: URL): ApiRoute | undefined {
  if (method !== 'POST') return undefined;
  const apiVersion = url.searchParams.get('api-version') ?? undefined;
  const withVersion = apiVersion === undefined ? {} : { apiVersion };

  const deployment = DEPLOYMENT_PATH.exec(url.pathname);
  if (deployment) {
    const name = decodePathSegment(deployment[1] ?? '');
    if (name === undefined) return undefined;
    return { flavour: 'azure-deployment', operation: asOperation(deployment[2]), pathDeployment: name, ...withVersion };
  }
  const azureV1 = AZURE_V1_PATH.exec(url.pathname);
  if (azureV1) return { flavour: 'azure-v1', operation: asOperation(azureV1[1]), ...withVersion };
  const openai = OPENAI_PATH.exec(url.pathname);
  if (openai) return { flavour: 'openai', operation: asOperation(openai[1]), ...withVersion };
  return undefined;
}

function asOperation(value: string | undefined): ImageOperation {
  return value === 'edits' ? 'edits' : 'generations';
}

function decodePathSegment(segment: string): string | undefined {
  try {
    return decodeURIComponent(segment);
  } catch {
    // A broken percent-escape cannot name a deployment; the route simply does not exist.
    return undefined;
  }
}

/**
 * Whether a dated api-version knows `/images/edits`: it arrived in 2025-04-01-preview (§2.2).
 * Versions that are not dates (for example 'preview' or 'latest') are taken as current.
 */
export function apiVersionSupportsEdits(apiVersion: string): boolean {
  const date = /^(\d{4}-\d{2}-\d{2})/.exec(apiVersion)?.[1];
  return date === undefined || date >= '2025-04-01';
}
