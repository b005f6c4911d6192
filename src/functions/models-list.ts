import { app } from '@azure/functions';

import { withErrorHandling } from '../http/error-response';
import { createListModelsHandler } from '../http/models-handlers';
import { getServices } from '../services';

app.http('models-list', {
  methods: ['GET'],
  route: 'models',
  authLevel: 'function',
  handler: withErrorHandling(createListModelsHandler(getServices)),
});
