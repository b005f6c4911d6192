import { app } from '@azure/functions';

import { routeAuthLevel } from '../config';
import { withSignIn } from '../http/caller';
import { createSubscribeHandler } from '../http/callbacks-handlers';
import { withErrorHandling } from '../http/error-response';
import { getServices } from '../services';

app.http('subscriptions-create', {
  methods: ['POST'],
  route: 'subscriptions',
  authLevel: routeAuthLevel('caller'),
  handler: withErrorHandling(withSignIn(getServices, createSubscribeHandler(getServices))),
});
