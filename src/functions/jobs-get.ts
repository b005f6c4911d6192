import { app } from '@azure/functions';

import { withErrorHandling } from '../http/error-response';
import { createGetJobHandler } from '../http/jobs-handlers';
import { getServices } from '../services';

// Anonymous: the job's link carries its own access token, checked by the handler.
app.http('jobs-get', {
  methods: ['GET'],
  route: 'jobs/{id}',
  authLevel: 'anonymous',
  handler: withErrorHandling(createGetJobHandler(getServices)),
});
