import { app } from '@azure/functions';

import { withInvocationLog } from '../adapters/invocation-log';
import { createUsageRetryPoisonHandler, createUsageRetryWorker } from '../queue/usage-retry-handlers';
import { getServices } from '../services';

// Usage records the usage table refused while their requests ran (%USAGE_QUEUE%), written later.
app.storageQueue('usage-retry', {
  queueName: '%USAGE_QUEUE%',
  connection: 'ImagesStorage',
  handler: withInvocationLog(createUsageRetryWorker(getServices)),
});

app.storageQueue('usage-retry-poison', {
  queueName: '%USAGE_QUEUE%-poison',
  connection: 'ImagesStorage',
  handler: withInvocationLog(createUsageRetryPoisonHandler()),
});
