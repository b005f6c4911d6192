import { app } from '@azure/functions';

import { loadConfig } from '../config';

// A misconfigured deployment says so once, at start-up, with every problem listed; requests then
// answer 500 ConfigurationError and /api/health 503 until the settings are fixed.
app.hook.appStart(() => {
  try {
    loadConfig(process.env);
  } catch (error: unknown) {
    console.error(error instanceof Error ? error.message : error);
  }
});
