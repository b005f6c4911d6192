import type { DocumentStore, Versioned } from './ports';

export interface DocumentLeaseOptions<T> {
  readonly documents: DocumentStore;
  readonly name: string;
  /** The document as claimed, at the ETag of the claim. */
  readonly claimed: Versioned<T>;
  /** How often `renew` is applied while the lease is held. */
  readonly renewEveryInMs: number;
  /** The document with its lease extended from now. */
  readonly renew: (value: T) => T;
}

/**
 * A claimed document that stays ours while slow work runs: renewed on a timer, and every change
 * applied one at a time, each guarded by the ETag of the last, so that a renewal and a change never
 * overwrite each other. Once another writer wins (the lease ran out and someone took over), every
 * later change is refused.
 */
export class DocumentLease<T> {
  private current: Versioned<T>;
  private lost = false;
  private pending: Promise<unknown> = Promise.resolve();
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly options: DocumentLeaseOptions<T>) {
    this.current = options.claimed;
    this.timer = setInterval(() => {
      // A failed renewal is retried by the next one; if they all fail, the lease runs out and another worker takes over.
      this.update(options.renew).catch(() => undefined);
    }, options.renewEveryInMs);
    // The lease must not keep a process alive that has nothing else to do.
    this.timer.unref();
  }

  /** The document as last written through this lease. */
  get value(): T {
    return this.current.value;
  }

  /** True once another writer changed the document: this lease no longer owns it. */
  get isLost(): boolean {
    return this.lost;
  }

  /** Writes `change(latest)`; resolves with it, or undefined when the lease is lost. Rejects when storage fails. */
  update(change: (value: T) => T): Promise<T | undefined> {
    const next = this.pending.then(async () => {
      if (this.lost) return undefined;
      const value = change(this.current.value);
      const etag = await this.options.documents.replace(this.options.name, value, this.current.etag);
      if (etag === undefined) {
        this.lost = true;
        return undefined;
      }
      this.current = { value, etag };
      return value;
    });
    this.pending = next.catch(() => undefined);
    return next;
  }

  /** Stops renewing; changes already asked for still complete. */
  stop(): void {
    clearInterval(this.timer);
  }
}
