import { app } from '@azure/functions';

import { routeAuthLevel } from '../config';
import { withSignIn } from '../http/caller';
import { withErrorHandling } from '../http/error-response';
import { createListModelsHandler } from '../http/models-handlers';
import { getServices } from '../services';

app.http('models-list', {
  methods: ['GET'],
  route: 'models',
  authLevel: routeAuthLevel('caller'),
  handler: withErrorHandling(withSignIn(getServices, createListModelsHandler(getServices))),
});
