import type { CallbackMessage, CallbackQueue, CallbackReply, CallbackSender, InboxSubscription, SubscriptionStore } from '../../src/domain/callbacks';

export class RecordingCallbackQueue implements CallbackQueue {
  readonly sent: { message: CallbackMessage; delayInSeconds: number | undefined }[] = [];

  enqueue(message: CallbackMessage, options: { readonly delayInSeconds?: number | undefined } = {}): Promise<void> {
    this.sent.push({ message, delayInSeconds: options.delayInSeconds });
    return Promise.resolve();
  }
}

/** Answers each post with the next scripted reply (or throws it), and records what was sent. */
export class ScriptedCallbackSender implements CallbackSender {
  readonly posts: { url: string; body: string; headers: Readonly<Record<string, string>> }[] = [];

  constructor(private readonly replies: (CallbackReply | Error)[] = []) {}

  post(url: string, body: string, headers: Readonly<Record<string, string>>): Promise<CallbackReply> {
    this.posts.push({ url, body, headers });
    const reply = this.replies.shift() ?? { status: 200 };
    return reply instanceof Error ? Promise.reject(reply) : Promise.resolve(reply);
  }
}

export class InMemorySubscriptionStore implements SubscriptionStore {
  readonly subscriptions = new Map<string, InboxSubscription>();

  create(subscription: InboxSubscription): Promise<void> {
    this.subscriptions.set(subscription.id, subscription);
    return Promise.resolve();
  }

  read(id: string): Promise<InboxSubscription | undefined> {
    return Promise.resolve(this.subscriptions.get(id));
  }

  delete(id: string): Promise<boolean> {
    return Promise.resolve(this.subscriptions.delete(id));
  }

  list(): Promise<InboxSubscription[]> {
    return Promise.resolve([...this.subscriptions.values()]);
  }
}
