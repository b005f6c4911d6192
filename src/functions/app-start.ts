import { app } from '@azure/functions';

import { loadConfig } from '../config';

// A misconfigured deployment says so once, at start-up, with every problem listed; requests then
// answer 500 ConfigurationError and /api/health 503 until the settings are fixed.
app.hook.appStart(() => {
  try {
    const config = loadConfig(process.env);
    if (config.publicBaseUrl === undefined) {
      console.warn('Neither PUBLIC_BASE_URL nor WEBSITE_HOSTNAME is set: requests that answer with job links will fail until one is.');
    }
  } catch (error: unknown) {
    console.error(error instanceof Error ? error.message : error);
  }
});
