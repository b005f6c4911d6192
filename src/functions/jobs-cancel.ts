import { app } from '@azure/functions';

import { withErrorHandling } from '../http/error-response';
import { createCancelJobHandler } from '../http/jobs-handlers';
import { getServices } from '../services';

// Anonymous: the job's link carries its own access token, checked by the handler.
app.http('jobs-cancel', {
  methods: ['DELETE'],
  route: 'jobs/{id}',
  authLevel: 'anonymous',
  handler: withErrorHandling(createCancelJobHandler(getServices)),
});
