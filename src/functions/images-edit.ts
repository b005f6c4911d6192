import { app } from '@azure/functions';

import { createEditImagesHandler } from '../http/edit-images-handler';
import { withErrorHandling } from '../http/error-response';
import { getServices } from '../services';

app.http('images-edit', {
  methods: ['POST'],
  route: 'images/edits',
  authLevel: 'function',
  handler: withErrorHandling(createEditImagesHandler(getServices)),
});
