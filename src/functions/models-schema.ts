import { app } from '@azure/functions';

import { routeAuthLevel } from '../config';
import { withSignIn } from '../http/caller';
import { withErrorHandling } from '../http/error-response';
import { createModelSchemaHandler } from '../http/models-handlers';
import { getServices } from '../services';

app.http('models-schema', {
  methods: ['GET'],
  route: 'models/{model}/schema',
  authLevel: routeAuthLevel('caller'),
  handler: withErrorHandling(withSignIn(getServices, createModelSchemaHandler(getServices))),
});
