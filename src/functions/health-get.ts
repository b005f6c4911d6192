import { app } from '@azure/functions';

import { createHealthHandler } from '../http/health-handler';
import { getServices } from '../services';

app.http('health-get', {
  methods: ['GET'],
  route: 'health',
  authLevel: 'anonymous',
  handler: createHealthHandler(getServices),
});
