/**
 * `npm start`: the app on http://localhost:7071/api with no Azure account and no Core Tools.
 * Starts Azurite and the Azure OpenAI emulator unless the settings point elsewhere, checks the
 * configuration, creates the containers, loads `package.json` `main` like `func start` and serves it.
 */
import { randomBytes } from 'node:crypto';
import { relative } from 'node:path';

import { startEmulator } from '../emulator/server';
import { loadConfig } from '../src/config';
import type { RunningAzurite } from './azurite';
import { isDevelopmentStorage, startAzurite } from './azurite';
import { createContainers, createQueues } from './containers';
import type { RunningFunctionsHost } from './http-host';
import { startFunctionsHost } from './http-host';
import { consoleSink, describeError, redactingSink } from './log';
import { getFreePort, isPortFree, isPortListening } from './ports';
import { startBlobTriggers } from './blob-trigger';
import { readQueueTriggerSettings, startQueueRunner } from './queue-runner';
import { installFunctionsCore, loadFunctionApp } from './registry';
import { keptJobTokenSecret, newJobTokenSecret } from './job-token-secret';
import { removeRunningStack, writeRunningStack } from './running-stack';
import type { AppSettings, LocalHostEnv } from './settings';
import {
  bindingSettings,
  DEFAULT_AZURITE_PORTS,
  DEFAULT_EMULATOR_PORT,
  DEFAULT_HTTP_PORT,
  EMULATOR_API_KEY,
  emulatorAppSettings,
  findProjectRoot,
  mergeSettings,
  planEmulator,
  readLocalHostEnv,
  readLocalSettings,
  storageAppSettings,
} from './settings';

const log = redactingSink((line) => consoleSink(`[local-host] ${line}`));

interface Started {
  readonly name: string;
  stop(): Promise<void>;
}

/** What was started so far, stopped in reverse order on Ctrl-C or on a failed start-up. */
const started: Started[] = [];

async function stopAll(): Promise<void> {
  for (let item = started.pop(); item !== undefined; item = started.pop()) {
    try {
      await item.stop();
    } catch (error: unknown) {
      log(`could not stop ${item.name}: ${describeError(error)}`);
    }
  }
}

function isSet(settings: Readonly<Record<string, string | undefined>>, name: string): boolean {
  return settings[name] !== undefined && settings[name].trim() !== '';
}

const AZURITE_SERVICES = ['blob', 'queue', 'table'] as const;

/** Azurite, and the folder it keeps its data in (undefined when the data lives in memory). */
async function startLocalAzurite(hostEnv: LocalHostEnv): Promise<{ azurite: RunningAzurite; dataDir: string | undefined }> {
  const ports: Partial<Record<(typeof AZURITE_SERVICES)[number], number>> = {};
  const busyDefaults: number[] = [];
  for (const service of AZURITE_SERVICES) {
    const asked = hostEnv.azuritePorts[service];
    if (asked !== undefined) {
      if (!(await isPortFree(asked))) throw new Error(`AZURITE_${service.toUpperCase()}_PORT=${asked}, but that port is in use (another Azurite?). Stop whatever listens there or choose another port.`);
      ports[service] = asked;
    } else if (await isPortFree(DEFAULT_AZURITE_PORTS[service])) {
      ports[service] = DEFAULT_AZURITE_PORTS[service];
    } else {
      busyDefaults.push(DEFAULT_AZURITE_PORTS[service]);
    }
  }
  // A busy default port most likely means another Azurite, perhaps on .azurite/ itself: two must
  // never share a folder, so ours then runs in memory.
  if (busyDefaults.length > 0) {
    log(`port(s) ${busyDefaults.join(', ')} are busy (another Azurite?); ours takes free ports instead and keeps its data in memory. Set AZURITE_BLOB_PORT, AZURITE_QUEUE_PORT and AZURITE_TABLE_PORT to choose them.`);
  }
  const inMemory = hostEnv.azuriteInMemory || busyDefaults.length > 0;
  const azurite = await startAzurite({
    ...(ports.blob === undefined ? {} : { blobPort: ports.blob }),
    ...(ports.queue === undefined ? {} : { queuePort: ports.queue }),
    ...(ports.table === undefined ? {} : { tablePort: ports.table }),
    ...(inMemory ? {} : { dataDir: hostEnv.stateDir }),
    // Azurite announces each service's start and stop; anything else it says is worth showing.
    log: (line) => {
      if (!/service (is starting at|is successfully listening at|is closing|successfully closed)/.test(line)) log(`azurite: ${line}`);
    },
  });
  started.push({ name: 'Azurite', stop: () => azurite.stop() });
  const data = inMemory ? 'data in memory' : `data in ${relative(process.cwd(), hostEnv.stateDir) || '.'}/`;
  log(`Azurite (pid ${azurite.pid}) blob ${azurite.blobEndpoint}, queue ${azurite.queueEndpoint}, table ${azurite.tableEndpoint}; ${data}`);
  return { azurite, dataDir: inMemory ? undefined : hostEnv.stateDir };
}

/**
 * JOB_TOKEN_SECRET unless the user set one: kept in the state folder (`.azurite/`) while the jobs are kept anywhere
 * (Azurite's folder or a real account), made for this run when Azurite holds them in memory.
 */
function jobTokenSecretSetting(stateDir: string, azurite: { dataDir: string | undefined } | undefined): AppSettings {
  if (azurite && azurite.dataDir === undefined) return { JOB_TOKEN_SECRET: newJobTokenSecret() };
  const { secret, path } = keptJobTokenSecret(azurite?.dataDir ?? stateDir);
  log(`job-token secret kept in ${relative(process.cwd(), path)}`);
  return { JOB_TOKEN_SECRET: secret };
}

async function startLocalEmulator(port: number | undefined, apiKey: string): Promise<string> {
  let chosen = port;
  if (chosen === undefined) {
    chosen = (await isPortFree(DEFAULT_EMULATOR_PORT)) ? DEFAULT_EMULATOR_PORT : await getFreePort();
    if (chosen !== DEFAULT_EMULATOR_PORT) log(`port ${DEFAULT_EMULATOR_PORT} is busy; the emulator listens on ${chosen} instead (EMULATOR_PORT chooses it).`);
  }
  const emulator = await startEmulator({ host: '127.0.0.1', port: chosen, apiKeys: [apiKey] });
  started.push({ name: 'the Azure OpenAI emulator', stop: () => emulator.close() });
  log(`Azure OpenAI emulator on ${emulator.url}`);
  return emulator.url;
}

async function run(): Promise<void> {
  const projectRoot = findProjectRoot(__dirname);
  const hostEnv = readLocalHostEnv(process.env, projectRoot);
  const localSettings = readLocalSettings(projectRoot);
  if (localSettings) log(`settings from ${relative(process.cwd(), localSettings.path)}`);
  // What the user chose: local.settings.json Values, overridden by the real environment.
  const user = mergeSettings(localSettings?.values ?? {}, process.env);

  // Fail before starting anything when the HTTP port is taken.
  const rawPort = isSet(user, 'PORT') ? (user['PORT'] ?? '') : String(localSettings?.localHttpPort ?? DEFAULT_HTTP_PORT);
  const port = /^\d+$/.test(rawPort.trim()) ? Number(rawPort) : Number.NaN;
  if (!Number.isInteger(port) || port > 65_535) throw new Error(`PORT must be a port number, not "${rawPort}".`);
  if (!(await isPortFree(port))) throw new Error(`Port ${port} is in use (is another host running?). Set PORT to another port.`);

  // 1. Storage: our Azurite, unless ImagesStorage names another account (by connection string or,
  //    as in Azure, by ImagesStorage__blobServiceUri for managed identity).
  const storageNames = ['ImagesStorage', 'AzureWebJobsStorage'] as const;
  const identityStorage = isSet(user, 'ImagesStorage__blobServiceUri') || isSet(user, 'ImagesStorage__serviceUri');
  const needsAzurite = isSet(user, 'ImagesStorage') ? isDevelopmentStorage(user['ImagesStorage'] ?? '') : !identityStorage;
  const localStorage = needsAzurite ? await startLocalAzurite(hostEnv) : undefined;
  const azurite = localStorage?.azurite;
  if (!azurite) log('ImagesStorage names a real storage account; not starting Azurite.');

  // 2. Azure OpenAI: the emulator unless the user configured an endpoint. An endpoint on a loopback
  //    port (e.g. local.settings.example.json's) is the emulator's address: it is started there unless
  //    something listens already, or on EMULATOR_PORT when that is set and the address came from
  //    local.settings.json. The key-auth defaults only come with the emulator: a real endpoint keeps
  //    the app's own default (managed identity, i.e. the developer's Azure login).
  // WEBSITE_HOSTNAME as `func start` sets it: the app builds its absolute links from it.
  let defaults: AppSettings = { FUNCTIONS_WORKER_RUNTIME: 'node', WEBSITE_HOSTNAME: `localhost:${port}` };
  if (!isSet(user, 'JOB_TOKEN_SECRET')) defaults = { ...defaults, ...jobTokenSecretSetting(hostEnv.stateDir, localStorage) };
  let overrides: AppSettings = {};
  if (azurite) defaults = { ...defaults, ...storageAppSettings(azurite.connectionString) };
  const userEndpoint = isSet(user, 'AZURE_OPENAI_ENDPOINT') ? user['AZURE_OPENAI_ENDPOINT'] : undefined;
  const plan = planEmulator(
    userEndpoint === undefined ? undefined : { url: userEndpoint, source: isSet(process.env, 'AZURE_OPENAI_ENDPOINT') ? 'environment' : 'local.settings.json' },
    hostEnv.emulatorPort,
  );
  if (plan.note !== undefined) log(plan.note);
  // The emulator accepts the key the app will send.
  const emulatorKey = isSet(user, 'AZURE_OPENAI_API_KEY') ? (user['AZURE_OPENAI_API_KEY'] ?? EMULATOR_API_KEY) : EMULATOR_API_KEY;
  if (plan.kind === 'emulator') {
    const url = await startLocalEmulator(plan.port, emulatorKey);
    defaults = { ...defaults, ...emulatorAppSettings(url, emulatorKey) };
    if (userEndpoint !== undefined) overrides = { AZURE_OPENAI_ENDPOINT: url };
  } else if (plan.kind === 'emulator-at-endpoint' && !(await isPortListening(plan.port))) {
    await startLocalEmulator(plan.port, emulatorKey);
  } else {
    log(`Azure OpenAI endpoint from your settings: ${userEndpoint ?? ''}`);
  }

  // 3. Embedded defaults < local.settings.json < what npm start itself chose < environment, into
  //    process.env before the app loads.
  const settings = mergeSettings(defaults, localSettings?.values ?? {}, overrides, process.env);
  if (azurite) {
    // UseDevelopmentStorage=true means the default ports; ours may differ, so name them explicitly.
    for (const name of storageNames) {
      if (isSet(settings, name) && isDevelopmentStorage(settings[name] ?? '')) settings[name] = azurite.connectionString;
    }
  }
  Object.assign(process.env, settings);

  // 4. The configuration the app will use, checked once with every problem listed.
  const config = loadConfig(process.env);
  Object.assign(process.env, bindingSettings(config, process.env));
  if (azurite && isDevelopmentStorage(process.env['ImagesStorage'] ?? '')) {
    const containers: string[] = Object.values(config.storage.containers);
    await createContainers(azurite.connectionString, containers);
    await createQueues(azurite.connectionString, Object.values(config.storage.queues));
    log(`containers ready: ${containers.join(', ')}; queues: ${Object.values(config.storage.queues).join(', ')}`);
  }

  // 5. The functions, loaded the way `func start` loads them.
  installFunctionsCore();
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- requiring the app's files is how the host loads it
  const app = loadFunctionApp(projectRoot, (file) => require(file));
  const functionKey = isSet(settings, 'LOCAL_FUNCTION_KEY') ? (settings['LOCAL_FUNCTION_KEY'] ?? '') : randomBytes(24).toString('base64url');
  const masterKey = isSet(settings, 'LOCAL_MASTER_KEY') ? (settings['LOCAL_MASTER_KEY'] ?? '') : randomBytes(24).toString('base64url');

  const blobTriggers = await startBlobTriggers({ registrations: app.functions, settings: process.env, log: consoleSink });
  started.push({ name: 'the blob triggers', stop: () => blobTriggers.close() });
  const host: RunningFunctionsHost = await startFunctionsHost({
    registrations: app.functions,
    hooks: app.hooks,
    port,
    functionKey,
    masterKey,
    functionAppDirectory: projectRoot,
    log: consoleSink,
    blobWebhook: (name, eventType, body) => blobTriggers.handleWebhook(name, eventType, body),
  });
  started.push({ name: 'the HTTP host', stop: () => host.close() });
  const queueRunner = await startQueueRunner({
    registrations: app.functions,
    settings: process.env,
    triggerSettings: readQueueTriggerSettings(projectRoot),
    log: consoleSink,
  });
  started.push({ name: 'the queue triggers', stop: () => queueRunner.close() });

  // 6. Ready: what runs where, and the same for other local tools (the project CLI) in the state folder.
  const appUrl = `http://localhost:${host.port}`;
  const base = `${appUrl}/api`;
  // Only Azurite's: its account key is the public development one, while a real account's is a secret.
  const storage = process.env['ImagesStorage'] ?? '';
  const storageConnectionString = azurite && isDevelopmentStorage(storage) ? storage : undefined;
  writeRunningStack(hostEnv.stateDir, {
    pid: process.pid,
    startedAt: new Date().toISOString(),
    appUrl,
    functionKey,
    masterKey,
    ...(storageConnectionString === undefined ? {} : { storageConnectionString }),
    containers: config.storage.containers,
  });
  started.push({ name: 'running-stack.json', stop: () => Promise.resolve(removeRunningStack(hostEnv.stateDir, process.pid)) });
  for (const fn of host.functions) {
    const methods = fn.methods.length > 0 ? fn.methods.join(',') : 'any';
    const key = fn.authLevel === 'admin' ? ' (master key)' : fn.authLevel === 'anonymous' ? '' : ' (function key)';
    console.log(`  ${fn.name}: [${methods}] ${base}/${fn.route}${key}`);
  }
  for (const { functionName, queueName } of queueRunner.queues) console.log(`  ${functionName}: [queue] ${queueName}`);
  for (const { functionName, container } of blobTriggers.functions) {
    console.log(`  ${functionName}: [blob, Event Grid] ${container}/ (watched; webhook http://localhost:${host.port}/runtime/webhooks/blobs?functionName=Host.Functions.${functionName})`);
  }
  const notRun = app.functions.length - host.functions.length - queueRunner.queues.length - blobTriggers.functions.length;
  if (notRun > 0) log(`${notRun} function(s) with other triggers are loaded but not run by the local host yet.`);
  if (storageConnectionString !== undefined) console.log(`  storage: ${storageConnectionString}`);
  console.log(`In another terminal, \`eval "$(npm run -s imagegen -- env)"\` sets APP, KEY, MASTER_KEY and AZURE_STORAGE_CONNECTION_STRING for the README's examples.`);
  console.log(
    `curl -sS -X POST "${base}/images/generations" -H "x-functions-key: ${functionKey}" -H "content-type: application/json" -d '{"prompt":"a watercolor fox","size":"1024x1024"}'`,
  );
  // Last, so whoever waits for this line has everything above it.
  console.log(`[local-host] ready on ${base} (function key: ${functionKey}); Ctrl-C stops everything.`);
}

let stopping = false;
function onSignal(signal: NodeJS.Signals): void {
  if (stopping) {
    log(`${signal} again; exiting without waiting.`);
    process.exit(1);
  }
  stopping = true;
  log(`${signal}: stopping...`);
  void stopAll().then(() => process.exit(0));
}
process.on('SIGINT', onSignal);
process.on('SIGTERM', onSignal);

run().catch(async (error: unknown) => {
  // Our own start-up errors say what to fix; anything else (a bug) also gets its stack.
  const expected = error instanceof Error && (error.name === 'Error' || error.name === 'ConfigurationError');
  log(`start-up failed: ${expected ? error.message : describeError(error)}`);
  await stopAll();
  process.exit(1);
});
