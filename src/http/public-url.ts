import type { AppConfig } from '../config';
import { ConfigurationError } from '../domain/errors';

/** The route prefix of every HTTP function (host.json `extensions.http.routePrefix`, default `api`). */
const ROUTE_PREFIX = '/api';

/**
 * An absolute URL of this app's API, built from the configured public base URL. Never from the
 * request: its Host and X-Forwarded-* headers are the caller's to choose, and a link built from them
 * would carry a job's token to whatever host the caller named.
 */
export function apiUrl(config: AppConfig, path: string): string {
  if (config.publicBaseUrl === undefined) {
    throw new ConfigurationError(['Set PUBLIC_BASE_URL (or run where WEBSITE_HOSTNAME is set): absolute links to the API are built from it.']);
  }
  return `${config.publicBaseUrl}${ROUTE_PREFIX}${path}`;
}
