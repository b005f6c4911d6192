import { TableClient } from '@azure/data-tables';
import type { AccessToken, GetTokenOptions, TokenCredential } from '@azure/identity';
import { BlobServiceClient, StorageSharedKeyCredential } from '@azure/storage-blob';
import { QueueServiceClient } from '@azure/storage-queue';
import { randomBytes, randomUUID } from 'node:crypto';
import { Agent } from 'undici';

import { AzureOpenAIImagesClient } from './adapters/azure-openai-images-client';
import { BlobDocumentStore } from './adapters/blob-document-store';
import { UndiciCallbackSender } from './adapters/callback-sender';
import { BlobImageStore } from './adapters/blob-image-store';
import { BlobInboxStore } from './adapters/blob-inbox-store';
import { BlobInputImageStore } from './adapters/blob-input-image-store';
import type { BlobSasSigner } from './adapters/blob-sas';
import { SharedKeySasSigner, UserDelegationSasSigner } from './adapters/blob-sas';
import { BlobSubscriptionStore } from './adapters/blob-subscription-store';
import { invocationLog } from './adapters/invocation-log';
import { LogTelemetry } from './adapters/log-telemetry';
import { StorageCallbackQueue } from './adapters/storage-callback-queue';
import { StorageJobQueue } from './adapters/storage-job-queue';
import { StorageUsageRetryQueue } from './adapters/storage-usage-retry-queue';
import { TableDocumentStore, TableUsageStore } from './adapters/table-usage-store';
import type { AppConfig } from './config';
import { OPENAI_SCOPE } from './config';
import { BackendRouter } from './domain/backend-router';
import { ConfigurationError } from './domain/errors';
import { createMetering } from './domain/metering';
import { RoutedImageModelClient } from './domain/routed-image-model';
import type { Clock, IdGenerator } from './domain/ports';
import type { Services } from './services';

/** Builds the real clients from the configuration; loaded lazily by `getServices`. */
export function createServices(config: AppConfig): Services {
  const clock: Clock = { now: () => new Date() };
  let credential: TokenCredential | undefined;
  const getCredential = (): TokenCredential => {
    credential ??= new LazyDefaultAzureCredential(config.managedIdentityClientId);
    return credential;
  };

  const { openai } = config;
  // One pool per process: connections to the upstream are reused across requests.
  const dispatcher = new Agent({ keepAliveTimeout: 30_000, headersTimeout: openai.timeoutInMs + 1_000, bodyTimeout: openai.timeoutInMs + 1_000 });
  const backends = openai.backends.map(({ name, model, priority, weight, quota, endpoint, deployment, auth }) => ({
    profile: { name, model, priority, weight, quota },
    deployment,
    client: new AzureOpenAIImagesClient({
      endpoint,
      apiFlavor: openai.apiFlavor,
      apiVersion: openai.apiVersion,
      auth: auth.mode === 'key' ? auth : { mode: 'token', credential: getCredential(), scope: OPENAI_SCOPE },
      timeoutInMs: openai.timeoutInMs,
      // One request per call: the routed client retries, on another deployment when it can.
      maxRetries: 0,
      dispatcher,
    }),
  }));
  const imageModel = new RoutedImageModelClient({
    backends,
    router: new BackendRouter(
      backends.map((backend) => backend.profile),
      { clock },
    ),
    clock,
    timeoutInMs: openai.timeoutInMs,
    maxRetries: openai.maxRetries,
  });

  const { connection } = config.storage;
  let serviceClient: BlobServiceClient;
  let queueServiceClient: QueueServiceClient;
  let sasSigner: BlobSasSigner;
  let usageTable: TableClient;
  if (connection.kind === 'connection-string') {
    serviceClient = BlobServiceClient.fromConnectionString(connection.connectionString);
    queueServiceClient = QueueServiceClient.fromConnectionString(connection.connectionString);
    // Azurite serves tables over plain http; the tables client refuses that unless told.
    usageTable = TableClient.fromConnectionString(connection.connectionString, config.usage.table, {
      allowInsecureConnection: /TableEndpoint=http:|DefaultEndpointsProtocol=http;|UseDevelopmentStorage=true/i.test(connection.connectionString),
    });
    if (!(serviceClient.credential instanceof StorageSharedKeyCredential)) {
      throw new ConfigurationError([
        'ImagesStorage must carry an AccountKey to sign links; in Azure use ImagesStorage__blobServiceUri with the managed identity instead.',
      ]);
    }
    sasSigner = new SharedKeySasSigner(serviceClient.credential, serviceClient.url, clock);
  } else {
    serviceClient = new BlobServiceClient(connection.blobServiceUri, getCredential());
    queueServiceClient = new QueueServiceClient(connection.queueServiceUri, getCredential());
    usageTable = new TableClient(connection.tableServiceUri, config.usage.table, getCredential());
    sasSigner = new UserDelegationSasSigner(serviceClient, clock);
  }
  const container = serviceClient.getContainerClient(config.storage.containers.images);
  const inbox = serviceClient.getContainerClient(config.storage.containers.inbox);
  const jobs = serviceClient.getContainerClient(config.storage.containers.jobs);
  const outputs = serviceClient.getContainerClient(config.storage.containers.outputs);
  const documents = new BlobDocumentStore(jobs);
  const imageStoreFor = (target: typeof container) =>
    new BlobImageStore({ container: target, sasSigner, sasLifetimeInMs: config.storage.sasLifetimeInMs, clock });

  const ids: IdGenerator = { newId: () => randomUUID() };
  const usageStore = new TableUsageStore(usageTable);
  const metering = createMetering({
    usageStore,
    retryQueue: new StorageUsageRetryQueue(queueServiceClient.getQueueClient(config.storage.queues.usage)),
    budgets: {
      rules: config.usage.budgets,
      counters: new TableDocumentStore(usageTable, usageStore),
      now: () => clock.now(),
      // A reservation outlives the longest upstream call (every retry) before it stops counting.
      reservationTtlInMs: config.openai.timeoutInMs * (config.openai.maxRetries + 1) + 60_000,
      currency: config.usage.prices.currency,
    },
    prices: config.usage.prices,
    telemetry: config.usage.telemetry === 'log' ? new LogTelemetry(invocationLog.info) : { trackImageRequest: () => undefined },
    clock,
    ids,
    log: invocationLog,
  });

  return {
    config,
    imageModel,
    upstreamCapacity: imageModel,
    imageStore: imageStoreFor(container),
    outputStore: imageStoreFor(outputs),
    inbox: new BlobInboxStore(inbox),
    inputImages: new BlobInputImageStore({ images: container, inbox, jobs }),
    clock,
    ids,
    metering,
    usageStore,
    documents,
    jobQueue: new StorageJobQueue(queueServiceClient.getQueueClient(config.storage.queues.jobs)),
    checkStorage: async () => {
      await container.getProperties();
    },
    jobTokenSecrets: jobTokenSecretsOf(config),
    callbacks: {
      queue: new StorageCallbackQueue(queueServiceClient.getQueueClient(config.storage.queues.callbacks)),
      sender: new UndiciCallbackSender({ policy: config.callbacks }),
      subscriptions: new BlobSubscriptionStore(jobs, documents),
      signingSecret: signingSecretOf(config),
    },
  };
}

/** The configured callback signing secret; outside Azure one for this process when none is, with a warning. */
function signingSecretOf(config: AppConfig): string | undefined {
  const { signingSecret } = config.callbacks;
  if (signingSecret.kind === 'configured') return signingSecret.secret;
  if (signingSecret.kind === 'missing') {
    console.warn('CALLBACK_SIGNING_SECRET is not set: requests with a callback URL and inbox trigger subscriptions are refused until it is.');
    return undefined;
  }
  console.warn('CALLBACK_SIGNING_SECRET is not set: callbacks are signed with a secret made for this process, which receivers cannot know in advance.');
  return `whsec_${randomBytes(32).toString('base64')}`;
}

/**
 * The configured secrets, or one for this process. Outside Azure that is allowed (config.ts refuses
 * it in Azure), but links handed out again after a restart then stop matching, so it says so once.
 */
function jobTokenSecretsOf(config: AppConfig): readonly [string, ...string[]] {
  const [current, ...previous] = config.jobs.tokenSecrets;
  if (current !== undefined) return [current, ...previous];
  console.warn(
    'JOB_TOKEN_SECRET is not set: the links of idempotent and blob-triggered jobs are derived with a secret made for this process, ' +
      'so replays after a restart cannot hand them out again. `npm start` keeps one in .azurite/; with `func start`, set it in local.settings.json.',
  );
  return [randomBytes(32).toString('base64url')];
}

/**
 * DefaultAzureCredential, loaded on the first token request: @azure/identity with MSAL costs about
 * 20 MiB and a few hundred ms to load, and with key auth and a connection string it is never used.
 */
class LazyDefaultAzureCredential implements TokenCredential {
  private credential: Promise<TokenCredential> | undefined;

  constructor(private readonly managedIdentityClientId: string | undefined) {}

  async getToken(scopes: string | string[], options?: GetTokenOptions): Promise<AccessToken | null> {
    this.credential ??= import('@azure/identity').then(
      ({ DefaultAzureCredential }) => new DefaultAzureCredential(this.managedIdentityClientId ? { managedIdentityClientId: this.managedIdentityClientId } : {}),
    );
    return (await this.credential).getToken(scopes, options);
  }
}
