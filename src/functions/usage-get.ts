import { app } from '@azure/functions';

import { routeAuthLevel } from '../config';
import { withErrorHandling } from '../http/error-response';
import { createUsageReportHandler } from '../http/usage-handler';
import { getServices } from '../services';

app.http('usage-get', {
  methods: ['GET'],
  route: 'usage',
  authLevel: routeAuthLevel('admin'),
  handler: withErrorHandling(createUsageReportHandler(getServices)),
});
