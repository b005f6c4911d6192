import { app } from '@azure/functions';

import { withInvocationLog } from '../adapters/invocation-log';
import { createJobWorker, createPoisonJobHandler } from '../queue/job-queue-handlers';
import { getServices } from '../services';

// Queue names come from app settings (%JOBS_QUEUE%), like the code's own configuration.
app.storageQueue('jobs-worker', {
  queueName: '%JOBS_QUEUE%',
  connection: 'ImagesStorage',
  handler: withInvocationLog(createJobWorker(getServices)),
});

app.storageQueue('jobs-poison', {
  queueName: '%JOBS_QUEUE%-poison',
  connection: 'ImagesStorage',
  handler: withInvocationLog(createPoisonJobHandler(getServices)),
});
