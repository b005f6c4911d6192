import { app } from '@azure/functions';

import { routeAuthLevel } from '../config';
import { createEditImagesHandler } from '../http/edit-images-handler';
import { withErrorHandling } from '../http/error-response';
import { getServices } from '../services';

app.http('images-edit', {
  methods: ['POST'],
  route: 'images/edits',
  authLevel: routeAuthLevel('caller'),
  handler: withErrorHandling(createEditImagesHandler(getServices)),
});
