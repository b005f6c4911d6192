import { app } from '@azure/functions';

import { withErrorHandling } from '../http/error-response';
import { createJobStatusHandler } from '../http/jobs-handlers';
import { getServices } from '../services';

// Anonymous: the job's link carries its own access token, checked by the handler.
app.http('jobs-status', {
  methods: ['GET'],
  route: 'jobs/{id}/status',
  authLevel: 'anonymous',
  handler: withErrorHandling(createJobStatusHandler(getServices)),
});
