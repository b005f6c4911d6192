import { app } from '@azure/functions';

import { withErrorHandling } from '../http/error-response';
import { createGenerateImagesHandler } from '../http/generate-images-handler';
import { getServices } from '../services';

app.http('images-generate', {
  methods: ['POST'],
  route: 'images/generations',
  authLevel: 'function',
  handler: withErrorHandling(createGenerateImagesHandler(getServices)),
});
