/**
 * A second instance of the app's queue worker in a process of its own, so that a test can kill it
 * (SIGKILL) in the middle of a job, as a crashed instance dies. Runs `src/functions/jobs-worker.ts`
 * through the local host's queue runner with the app settings in its environment, prints
 * `worker ready` once it polls, and prints every log line on stdout.
 */
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';

import { readQueueTriggerSettings, startQueueRunner } from '../../../local-host/queue-runner';
import { captureFunctionApp, installFunctionsCore } from '../../../local-host/registry';

const PROJECT_ROOT = resolve(__dirname, '..', '..', '..');

async function main(): Promise<void> {
  installFunctionsCore();
  const load = createRequire(__filename);
  const app = captureFunctionApp(() => {
    load(join(PROJECT_ROOT, 'src', 'functions', 'jobs-worker.ts'));
  });
  const runner = await startQueueRunner({
    registrations: app.functions,
    settings: process.env,
    triggerSettings: readQueueTriggerSettings(PROJECT_ROOT),
    log: (line) => console.log(line),
    maxPollIntervalInMs: 200,
  });
  console.log(`worker ready (${runner.queues.map((queue) => queue.queueName).join(', ')})`);
  process.once('SIGTERM', () => {
    void runner.close().then(() => process.exit(0));
  });
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
