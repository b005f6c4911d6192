import { app } from '@azure/functions';

import { withErrorHandling } from '../http/error-response';
import { createModelSchemaHandler } from '../http/models-handlers';
import { getServices } from '../services';

app.http('models-schema', {
  methods: ['GET'],
  route: 'models/{model}/schema',
  authLevel: 'function',
  handler: withErrorHandling(createModelSchemaHandler(getServices)),
});
