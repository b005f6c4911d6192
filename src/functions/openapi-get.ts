import { app } from '@azure/functions';

import { withErrorHandling } from '../http/error-response';
import { createOpenApiHandler } from '../http/openapi';
import { getServices } from '../services';

// Anonymous: Power Automate's "Import from URL" fetches it without a key; it holds no secret.
app.http('openapi-get', {
  methods: ['GET'],
  route: 'swagger.json',
  authLevel: 'anonymous',
  handler: withErrorHandling(createOpenApiHandler(getServices)),
});
