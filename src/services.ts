import type { AppConfig } from './config';
import { loadConfig } from './config';
import type { CallbackQueue, CallbackSender, SubscriptionStore } from './domain/callbacks';
import type { Metering } from './domain/metering';
import type { Clock, DocumentStore, IdGenerator, ImageModelClient, ImageStore, InboxStore, InputImageStore, JobQueue, UpstreamCapacity } from './domain/ports';
import type { UsageStore } from './domain/usage';

/** Everything the handlers need, built once per process from the validated configuration. */
export interface Services {
  readonly config: AppConfig;
  readonly imageModel: ImageModelClient;
  /** Where the image model has room now, so that jobs wait in the queue instead of paying for a 429. */
  readonly upstreamCapacity: UpstreamCapacity;
  readonly imageStore: ImageStore;
  /** Results of blob-triggered edits (the outputs container). */
  readonly outputStore: ImageStore;
  /** Uploads that trigger edits. */
  readonly inbox: InboxStore;
  /** Edit inputs referenced by blob name (images and inbox containers). */
  readonly inputImages: InputImageStore;
  readonly clock: Clock;
  readonly ids: IdGenerator;
  /** Job records and idempotency claims (the jobs container). */
  readonly documents: DocumentStore;
  readonly jobQueue: JobQueue;
  /** Resolves when the images container answers; rejects with the reason otherwise. */
  readonly checkStorage: () => Promise<void>;
  /** Budgets before each upstream call; usage, cost and telemetry after it. */
  readonly metering: Metering;
  /** What the usage report reads. */
  readonly usageStore: UsageStore;
  /** The configured job-token secrets, or one made for this process when none is configured (never in Azure). */
  readonly jobTokenSecrets: readonly [string, ...string[]];
  /** Outbound callbacks: their delivery queue, the guarded sender, the inbox trigger's subscriptions. */
  readonly callbacks: {
    readonly queue: CallbackQueue;
    readonly sender: CallbackSender;
    readonly subscriptions: SubscriptionStore;
    /** The configured signing secret, or one made for this process; undefined in Azure until configured. */
    readonly signingSecret: string | undefined;
  };
}

let services: Promise<Services> | undefined;

/** The composition root: the only place that reads the environment and constructs real clients. */
export function getServices(): Promise<Services> {
  services ??= buildServices().catch((error: unknown) => {
    services = undefined; // a transient failure should not poison every later request
    throw error;
  });
  return services;
}

async function buildServices(): Promise<Services> {
  const config = loadConfig(process.env);
  // The SDKs load on first use, so importing a function file stays cheap on a cold start.
  const { createServices } = await import('./create-services.js');
  return createServices(config);
}
