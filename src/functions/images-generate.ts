import { app } from '@azure/functions';

import { routeAuthLevel } from '../config';
import { withErrorHandling } from '../http/error-response';
import { createGenerateImagesHandler } from '../http/generate-images-handler';
import { getServices } from '../services';

app.http('images-generate', {
  methods: ['POST'],
  route: 'images/generations',
  authLevel: routeAuthLevel('caller'),
  handler: withErrorHandling(createGenerateImagesHandler(getServices)),
});
