import { app } from '@azure/functions';

import { createCallbackWorker } from '../queue/callback-queue-handlers';
import { getServices } from '../services';

// The queue name comes from app settings (%CALLBACKS_QUEUE%), like the job queue's.
app.storageQueue('callbacks-worker', {
  queueName: '%CALLBACKS_QUEUE%',
  connection: 'ImagesStorage',
  handler: createCallbackWorker(getServices),
});
