import { app } from '@azure/functions';

import { createJobWorker, createPoisonJobHandler } from '../queue/job-queue-handlers';
import { getServices } from '../services';

// Queue names come from app settings (%JOBS_QUEUE%), like the code's own configuration.
app.storageQueue('jobs-worker', {
  queueName: '%JOBS_QUEUE%',
  connection: 'ImagesStorage',
  handler: createJobWorker(getServices),
});

app.storageQueue('jobs-poison', {
  queueName: '%JOBS_QUEUE%-poison',
  connection: 'ImagesStorage',
  handler: createPoisonJobHandler(getServices),
});
