import { app } from '@azure/functions';

import { createUnsubscribeHandler } from '../http/callbacks-handlers';
import { withErrorHandling } from '../http/error-response';
import { getServices } from '../services';

// Anonymous: the subscription's Location carries its own token, checked by the handler.
app.http('subscriptions-delete', {
  methods: ['DELETE'],
  route: 'subscriptions/{id}',
  authLevel: 'anonymous',
  handler: withErrorHandling(createUnsubscribeHandler(getServices)),
});
