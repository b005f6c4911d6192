/**
 * `npm run emulator`: the images API emulator as a process of its own, configured by EMULATOR_*
 * variables (see config.ts). Prints one ready line and stops cleanly on SIGINT/SIGTERM.
 */
import { EmulatorConfigError, emulatorOptionsFromEnv } from './config';
import { DEFAULT_API_KEY, DEFAULT_DEPLOYMENTS, startEmulator } from './server';

async function main(): Promise<void> {
  const options = emulatorOptionsFromEnv(process.env);
  const emulator = await startEmulator(options);
  const key = options.apiKeys?.[0] ?? DEFAULT_API_KEY;
  const deployments = Object.entries(options.deployments ?? DEFAULT_DEPLOYMENTS)
    .map(([name, model]) => (name === model ? name : `${name}=${model}`))
    .join(', ');
  const quotas = Object.entries(options.quotas ?? {})
    .map(([name, quota]) => `${name} ${'imagesPerMinute' in quota ? `${quota.imagesPerMinute} images` : `${quota.requestsPerMinute} requests`}`)
    .join(', ');
  const minute = options.minuteMs === undefined ? 'minute' : `${options.minuteMs} ms "minute"`;
  console.log(
    `Azure OpenAI images emulator ready at ${emulator.url} (api-key: ${key}; deployments: ${deployments}${quotas ? `; quotas per ${minute}: ${quotas}` : ''})`,
  );

  let stopping = false;
  const stop = (signal: NodeJS.Signals): void => {
    if (stopping) return;
    stopping = true;
    console.log(`${signal} received; stopping the emulator.`);
    emulator.close().then(
      () => process.exit(0),
      (error: unknown) => {
        console.error('The emulator did not close cleanly:', error);
        process.exit(1);
      },
    );
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

main().catch((error: unknown) => {
  console.error(error instanceof EmulatorConfigError ? error.message : error);
  process.exit(1);
});
