import { app } from '@azure/functions';

import { createCallbackPoisonHandler, createCallbackWorker } from '../queue/callback-queue-handlers';
import { getServices } from '../services';

// The queue name comes from app settings (%CALLBACKS_QUEUE%), like the job queue's.
app.storageQueue('callbacks-worker', {
  queueName: '%CALLBACKS_QUEUE%',
  connection: 'ImagesStorage',
  handler: createCallbackWorker(getServices),
});

app.storageQueue('callbacks-poison', {
  queueName: '%CALLBACKS_QUEUE%-poison',
  connection: 'ImagesStorage',
  handler: createCallbackPoisonHandler(),
});
