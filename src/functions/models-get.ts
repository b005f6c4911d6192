import { app } from '@azure/functions';

import { withErrorHandling } from '../http/error-response';
import { createGetModelHandler } from '../http/models-handlers';
import { getServices } from '../services';

app.http('models-get', {
  methods: ['GET'],
  route: 'models/{model}',
  authLevel: 'function',
  handler: withErrorHandling(createGetModelHandler(getServices)),
});
