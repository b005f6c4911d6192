import type { BlobServiceClient, StorageSharedKeyCredential, UserDelegationKey } from '@azure/storage-blob';
import { BlobSASPermissions, generateBlobSASQueryParameters, SASProtocol } from '@azure/storage-blob';

import type { Clock } from '../domain/ports';

/** Signs read-only, single-blob SAS tokens. */
export interface BlobSasSigner {
  signReadOnly(containerName: string, blobName: string, expiresOn: Date): Promise<string>;
}

// Tolerates clocks a few minutes apart between us and Storage.
const CLOCK_SKEW_IN_MS = 5 * 60_000;
const MAX_DELEGATION_KEY_LIFETIME_IN_MS = 7 * 24 * 60 * 60_000;

const protocolFor = (endpoint: string) => (endpoint.startsWith('https:') ? SASProtocol.Https : SASProtocol.HttpsAndHttp);

/** Account-key SAS: only for a connection string that carries a key (the local emulator). */
export class SharedKeySasSigner implements BlobSasSigner {
  constructor(
    private readonly credential: StorageSharedKeyCredential,
    private readonly blobEndpoint: string,
    private readonly clock: Clock,
  ) {}

  signReadOnly(containerName: string, blobName: string, expiresOn: Date): Promise<string> {
    const query = generateBlobSASQueryParameters(
      {
        containerName,
        blobName,
        permissions: BlobSASPermissions.parse('r'),
        startsOn: new Date(this.clock.now().getTime() - CLOCK_SKEW_IN_MS),
        expiresOn,
        protocol: protocolFor(this.blobEndpoint),
      },
      this.credential,
    );
    return Promise.resolve(query.toString());
  }
}

export interface UserDelegationSasSignerOptions {
  /** Pins the SAS version; only needed against emulators that lag behind the SDK's default. */
  readonly sasVersion?: string | undefined;
}

/**
 * User-delegation SAS signed with a key from Entra ID, so no account key exists anywhere. The key is
 * cached for up to seven days and fetched again only when it would expire before a link it must sign.
 */
export class UserDelegationSasSigner implements BlobSasSigner {
  private cached: UserDelegationKey | undefined;
  private pending: Promise<UserDelegationKey> | undefined;

  constructor(
    private readonly serviceClient: BlobServiceClient,
    private readonly clock: Clock,
    private readonly options: UserDelegationSasSignerOptions = {},
  ) {}

  async signReadOnly(containerName: string, blobName: string, expiresOn: Date): Promise<string> {
    const key = await this.keyValidUntil(expiresOn);
    const query = generateBlobSASQueryParameters(
      {
        containerName,
        blobName,
        permissions: BlobSASPermissions.parse('r'),
        startsOn: new Date(this.clock.now().getTime() - CLOCK_SKEW_IN_MS),
        expiresOn: key.signedExpiresOn < expiresOn ? key.signedExpiresOn : expiresOn,
        protocol: protocolFor(this.serviceClient.url),
        ...(this.options.sasVersion ? { version: this.options.sasVersion } : {}),
      },
      key,
      this.serviceClient.accountName,
    );
    return query.toString();
  }

  private async keyValidUntil(expiresOn: Date): Promise<UserDelegationKey> {
    if (this.cached && this.cached.signedExpiresOn >= expiresOn) return this.cached;
    // One fetch serves every request that arrives while it is in flight.
    this.pending ??= this.fetchKey().finally(() => {
      this.pending = undefined;
    });
    const key = await this.pending;
    this.cached = key;
    return key;
  }

  private async fetchKey(): Promise<UserDelegationKey> {
    const now = this.clock.now().getTime();
    return this.serviceClient.getUserDelegationKey(new Date(now - CLOCK_SKEW_IN_MS), new Date(now + MAX_DELEGATION_KEY_LIFETIME_IN_MS - CLOCK_SKEW_IN_MS));
  }
}
