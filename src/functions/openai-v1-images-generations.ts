import { app } from '@azure/functions';

import { routeAuthLevel } from '../config';
import { withErrorHandling } from '../http/error-response';
import { createGenerateImagesHandler } from '../http/generate-images-handler';
import { getServices } from '../services';

// The path the `openai` SDK calls with baseURL set to `<app>/api/v1`: the same handler as images/generations.
app.http('openai-v1-images-generations', {
  methods: ['POST'],
  route: 'v1/images/generations',
  authLevel: routeAuthLevel('caller'),
  handler: withErrorHandling(createGenerateImagesHandler(getServices)),
});
