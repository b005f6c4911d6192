import { app } from '@azure/functions';

import { routeAuthLevel } from '../config';
import { withSignIn } from '../http/caller';
import { createUnsubscribeCallbackHandler } from '../http/callbacks-handlers';
import { withErrorHandling } from '../http/error-response';
import { getServices } from '../services';

app.http('callbacks-delete', {
  methods: ['DELETE'],
  route: 'callbacks',
  authLevel: routeAuthLevel('caller'),
  handler: withErrorHandling(withSignIn(getServices, createUnsubscribeCallbackHandler(getServices))),
});
