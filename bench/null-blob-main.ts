/**
 * The null blob endpoint (null-blob-server.ts) as a process of its own, so that its work is not in
 * the measured process's CPU time: prints one ready line with the blob endpoint, stops on SIGTERM.
 */
import { DEV_ACCOUNT_NAME } from '../local-host/azurite';
import { startNullBlobServer } from './null-blob-server';

async function main(): Promise<void> {
  const server = await startNullBlobServer({ accountName: DEV_ACCOUNT_NAME });
  console.log(`null blob endpoint ready at ${server.blobEndpoint}`);
  process.once('SIGTERM', () => {
    void server.close().then(() => process.exit(0));
  });
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
