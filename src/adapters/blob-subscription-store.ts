import type { ContainerClient } from '@azure/storage-blob';

import type { InboxSubscription, SubscriptionStore } from '../domain/callbacks';
import { inboxSubscriptionSchema } from '../domain/callbacks';
import { StorageError } from '../domain/errors';
import type { DocumentStore } from '../domain/ports';
import { isNotFound } from './storage-errors';

const PREFIX = 'subscriptions/';

/** Inbox trigger subscriptions as JSON blobs under `subscriptions/` in the jobs container: they outlive restarts. */
export class BlobSubscriptionStore implements SubscriptionStore {
  constructor(
    private readonly container: ContainerClient,
    private readonly documents: DocumentStore,
  ) {}

  async create(subscription: InboxSubscription): Promise<void> {
    if ((await this.documents.create(`${PREFIX}${subscription.id}.json`, subscription)) === undefined) {
      throw new StorageError(`Subscription ${subscription.id} exists already.`);
    }
  }

  async read(id: string): Promise<InboxSubscription | undefined> {
    const found = await this.documents.read(`${PREFIX}${id}.json`);
    return found === undefined ? undefined : this.parse(found.value, id);
  }

  async delete(id: string): Promise<boolean> {
    try {
      await this.container.getBlockBlobClient(`${PREFIX}${id}.json`).delete();
      return true;
    } catch (error: unknown) {
      if (isNotFound(error)) return false;
      throw new StorageError(`Could not delete subscription ${id}.`, error);
    }
  }

  async list(): Promise<InboxSubscription[]> {
    const subscriptions: InboxSubscription[] = [];
    try {
      for await (const blob of this.container.listBlobsFlat({ prefix: PREFIX })) {
        const id = blob.name.slice(PREFIX.length).replace(/\.json$/, '');
        const subscription = await this.read(id);
        if (subscription) subscriptions.push(subscription);
      }
    } catch (error: unknown) {
      if (error instanceof StorageError) throw error;
      throw new StorageError('Could not list the subscriptions.', error);
    }
    return subscriptions;
  }

  private parse(value: unknown, id: string): InboxSubscription {
    const parsed = inboxSubscriptionSchema.safeParse(value);
    if (!parsed.success) throw new StorageError(`Subscription ${id} is not in the expected shape.`, parsed.error);
    return parsed.data;
  }
}
