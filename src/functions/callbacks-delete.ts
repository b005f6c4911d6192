import { app } from '@azure/functions';

import { createUnsubscribeCallbackHandler } from '../http/callbacks-handlers';
import { withErrorHandling } from '../http/error-response';
import { getServices } from '../services';

app.http('callbacks-delete', {
  methods: ['DELETE'],
  route: 'callbacks',
  authLevel: 'function',
  handler: withErrorHandling(createUnsubscribeCallbackHandler(getServices)),
});
