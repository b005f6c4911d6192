import { app } from '@azure/functions';

import { withInvocationLog } from '../adapters/invocation-log';
import { createInboxEditHandler } from '../blob/inbox-edit-handler';
import { getServices } from '../services';

// Flex Consumption runs blob triggers only from Event Grid; the subscription is created after deploy
// (infra/hooks). The container comes from app settings (%INBOX_CONTAINER%), like the code's own.
app.storageBlob('inbox-edit', {
  path: '%INBOX_CONTAINER%/{name}',
  connection: 'ImagesStorage',
  source: 'EventGrid',
  handler: withInvocationLog(createInboxEditHandler(getServices)),
});
