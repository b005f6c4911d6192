import { loadConfig } from '../../src/config';
import type { Services } from '../../src/services';
import { InMemorySubscriptionStore, RecordingCallbackQueue, ScriptedCallbackSender } from './callbacks';
import { FakeImageModelClient } from './fake-image-model-client';
import { InMemoryDocumentStore, RecordingJobQueue } from './in-memory-documents';
import { InMemoryImageStore } from './in-memory-image-store';
import { InMemoryInboxStore } from './in-memory-inbox';
import { InMemoryInputImageStore } from './in-memory-input-image-store';
import type { InMemoryUsageStore, TestMetering } from './in-memory-usage';
import { makeTestMetering } from './in-memory-usage';

export interface FakeServices extends Services {
  readonly imageModel: FakeImageModelClient;
  readonly imageStore: InMemoryImageStore;
  readonly outputStore: InMemoryImageStore;
  readonly inbox: InMemoryInboxStore;
  readonly documents: InMemoryDocumentStore;
  readonly jobQueue: RecordingJobQueue;
  readonly inputImages: InMemoryInputImageStore;
  readonly usageStore: InMemoryUsageStore;
  /** What metering sent to telemetry and the log. */
  readonly metered: TestMetering;
  readonly callbacks: {
    readonly queue: RecordingCallbackQueue;
    readonly sender: ScriptedCallbackSender;
    readonly subscriptions: InMemorySubscriptionStore;
    readonly signingSecret: string | undefined;
  };
}

export function makeFakeServices(env: Record<string, string> = {}): FakeServices {
  let next = 0;
  const config = loadConfig({
    AZURE_OPENAI_ENDPOINT: 'https://fake.openai.azure.com',
    AZURE_OPENAI_DEPLOYMENTS: 'gpt-image-1.5=img15,gpt-image-2,dall-e-3',
    ImagesStorage: 'UseDevelopmentStorage=true',
    ...env,
  });
  const clock = { now: () => new Date('2026-11-25T12:00:00Z') };
  const metered = makeTestMetering({ clock, budgets: config.usage.budgets });
  return {
    config,
    imageModel: new FakeImageModelClient(),
    upstreamCapacity: { whenAvailable: () => undefined },
    imageStore: new InMemoryImageStore(),
    outputStore: new InMemoryImageStore(),
    inbox: new InMemoryInboxStore(),
    inputImages: new InMemoryInputImageStore(),
    clock,
    metering: metered.metering,
    usageStore: metered.usageStore,
    metered,
    ids: { newId: () => `request-${++next}` },
    checkStorage: () => Promise.resolve(),
    documents: new InMemoryDocumentStore(),
    jobQueue: new RecordingJobQueue(),
    jobTokenSecrets: ['fake-job-token-secret-of-at-least-32-characters'],
    callbacks: {
      queue: new RecordingCallbackQueue(),
      sender: new ScriptedCallbackSender(),
      subscriptions: new InMemorySubscriptionStore(),
      signingSecret: `whsec_${Buffer.alloc(32, 7).toString('base64')}`,
    },
  };
}
