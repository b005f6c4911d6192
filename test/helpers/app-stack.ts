import type { EmulatorOptions, RunningEmulator } from '../../emulator/server';
import { startEmulator } from '../../emulator/server';
import { uniqueContainerName } from './azurite';
import type { TestFunctionsHost, TestFunctionsHostOptions } from './functions-host';
import { appTestEnv, startTestFunctionsHost } from './functions-host';

export interface AppStack {
  readonly emulator: RunningEmulator;
  readonly host: TestFunctionsHost;
  /** Stops the host, then the emulator. Always call it (afterAll). */
  close(): Promise<void>;
}

export interface AppStackOptions {
  /** App settings on top of the `npm start` defaults (emulator, the run's Azurite, a fresh images container and queues). */
  readonly settings?: Readonly<Record<string, string>>;
  /** Everything else the test host takes: queue or blob triggers, their settings. */
  readonly host?: Omit<TestFunctionsHostOptions, 'env'>;
  /** The emulator's own options: quotas and the length of their minute, latency. */
  readonly emulator?: EmulatorOptions;
}

/** The emulator and the real app served in-process against the run's Azurite, as `npm start` runs them. */
export async function startAppStack(options: AppStackOptions = {}): Promise<AppStack> {
  const emulator = await startEmulator(options.emulator);
  try {
    const host = await startTestFunctionsHost({
      ...options.host,
      env: { ...appTestEnv({ emulatorUrl: emulator.url, imagesContainer: uniqueContainerName('e2e-images') }), ...queuesOfItsOwn(), ...options.settings },
    });
    return {
      emulator,
      host,
      async close() {
        await host.close();
        await emulator.close();
      },
    };
  } catch (error: unknown) {
    await emulator.close();
    throw error;
  }
}

/**
 * Every stack gets queues no other test file uses: test files run in parallel against one Azurite,
 * and a worker on a shared queue would run (and meter) another file's jobs.
 */
function queuesOfItsOwn(): Record<string, string> {
  return { JOBS_QUEUE: uniqueContainerName('e2e-jobs'), CALLBACKS_QUEUE: uniqueContainerName('e2e-callbacks'), USAGE_QUEUE: uniqueContainerName('e2e-usage') };
}
