import { app } from '@azure/functions';

import { routeAuthLevel } from '../config';
import { createEditImagesHandler } from '../http/edit-images-handler';
import { withErrorHandling } from '../http/error-response';
import { getServices } from '../services';

// The path the `openai` SDK calls with baseURL set to `<app>/api/v1`: the same handler as images/edits.
app.http('openai-v1-images-edits', {
  methods: ['POST'],
  route: 'v1/images/edits',
  authLevel: routeAuthLevel('caller'),
  handler: withErrorHandling(createEditImagesHandler(getServices)),
});
