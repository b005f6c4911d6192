import { app } from '@azure/functions';

import { routeAuthLevel } from '../config';
import { withSignIn } from '../http/caller';
import { withErrorHandling } from '../http/error-response';
import { createGetModelHandler } from '../http/models-handlers';
import { getServices } from '../services';

app.http('models-get', {
  methods: ['GET'],
  route: 'models/{model}',
  authLevel: routeAuthLevel('caller'),
  handler: withErrorHandling(withSignIn(getServices, createGetModelHandler(getServices))),
});
