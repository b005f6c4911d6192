import type { HttpResponseInit, InvocationContext } from '@azure/functions';

import { AppError } from '../domain/errors';
import type { Services } from '../services';

/** GET /health: 200 once the configuration is valid and the images container answers, 503 otherwise. */
export function createHealthHandler(getServices: () => Promise<Services>) {
  return async (_request: unknown, context: InvocationContext): Promise<HttpResponseInit> => {
    try {
      const services = await getServices();
      await services.checkStorage();
      return { status: 200, headers: { 'cache-control': 'no-store' }, jsonBody: { status: 'ok' } };
    } catch (error: unknown) {
      // Health is polled; the reason goes to the log, the caller only needs to know it is not ready.
      context.warn('Health check failed:', error instanceof Error ? error.message : error);
      const code = error instanceof AppError ? error.code : 'NotReady';
      return {
        status: 503,
        headers: { 'cache-control': 'no-store', 'retry-after': '5', 'x-ms-error-code': code },
        jsonBody: { status: 'unavailable', error: { code, message: 'The app is not ready; see its log for the reason.' } },
      };
    }
  };
}
