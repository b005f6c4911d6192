import { app } from '@azure/functions';

import { createSubscribeHandler } from '../http/callbacks-handlers';
import { withErrorHandling } from '../http/error-response';
import { getServices } from '../services';

app.http('subscriptions-create', {
  methods: ['POST'],
  route: 'subscriptions',
  authLevel: 'function',
  handler: withErrorHandling(createSubscribeHandler(getServices)),
});
