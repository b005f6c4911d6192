import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { describeWithTool } from '../helpers/system-tools';
import type { FakeAzRun } from './hook-scripts';
import { describeHookSource, hookTwins, itChecksItsInputsFirst, withFakeAz } from './hook-scripts';

/**
 * A stand-in for the Azure CLI: logs each call and answers from FAKE_AZ_* variables, so the hooks
 * run for real (under dash and pwsh) with nothing reaching Azure. `functionapp function show`
 * fails its first FAKE_AZ_FUNCTION_FAILURES calls, as on a host whose triggers are not synced yet.
 */
const FAKE_AZ = `#!/bin/sh
printf '%s\\n' "$*" >>"$FAKE_AZ_LOG"
case "$*" in
  "account show"*) exit "\${FAKE_AZ_ACCOUNT_RC:-0}" ;;
  "functionapp function show"*)
    shown=$(cat "$FAKE_AZ_LOG.shown" 2>/dev/null || echo 0)
    echo $((shown + 1)) >"$FAKE_AZ_LOG.shown"
    [ "$shown" -ge "\${FAKE_AZ_FUNCTION_FAILURES:-0}" ] || exit 3
    exit "\${FAKE_AZ_FUNCTION_RC:-0}" ;;
  "functionapp keys list"*) printf '%s\\n' "$FAKE_AZ_KEY"; exit 0 ;;
  "rest --method post"*) exit "\${FAKE_AZ_SYNC_RC:-0}" ;;
  "rest --method put"*)
    body=$(printf '%s\\n' "$*" | sed -n 's/.*--body @\\([^ ]*\\).*/\\1/p')
    cp "$body" "$FAKE_AZ_BODY"
    exit "\${FAKE_AZ_PUT_RC:-0}" ;;
  "rest --method get"*) printf '%s\\n' "\${FAKE_AZ_STATE:-Succeeded}"; exit 0 ;;
esac
echo "fake az: unexpected call: $*" >&2
exit 99
`;

const DEPLOYED = {
  AZURE_SUBSCRIPTION_ID: '11111111-2222-3333-4444-555555555555',
  AZURE_RESOURCE_GROUP: 'rg-dev',
  AZURE_FUNCTION_APP_NAME: 'func-abc',
  // A regional default hostname: the hook must use it as given, not guess <name>.azurewebsites.net.
  AZURE_FUNCTION_APP_HOSTNAME: 'func-abc-h2bqfzb4a8c0cxd5.eastus2-01.azurewebsites.net',
  INBOX_FUNCTION_NAME: 'inbox-edit',
  INBOX_CONTAINER: 'inbox',
  EVENTGRID_SYSTEM_TOPIC_ID: '/subscriptions/1111/resourceGroups/rg-dev/providers/Microsoft.EventGrid/systemTopics/evgt-abc',
  EVENTGRID_SUBSCRIPTION_NAME: 'inboxblobcreated',
  EVENTGRID_DEADLETTER_CONTAINER: 'eventgrid-deadletters',
  AZURE_STORAGE_ACCOUNT_ID: '/subscriptions/1111/resourceGroups/rg-dev/providers/Microsoft.Storage/storageAccounts/stimgabc',
};

const SUBSCRIPTION_URL = `${DEPLOYED.EVENTGRID_SYSTEM_TOPIC_ID}/eventSubscriptions/inboxblobcreated?api-version=2025-02-15`;
const SYNC_CALL = `rest --method post --url /subscriptions/${DEPLOYED.AZURE_SUBSCRIPTION_ID}/resourceGroups/rg-dev/providers/Microsoft.Web/sites/func-abc/host/default/sync?api-version=2024-04-01 --output none`;
const FUNCTION_SHOW = `functionapp function show --subscription ${DEPLOYED.AZURE_SUBSCRIPTION_ID} --resource-group rg-dev --name func-abc --function-name inbox-edit --output none`;

/** The subscription the hook must ask Event Grid for. */
const EXPECTED_SUBSCRIPTION = {
  properties: {
    destination: {
      endpointType: 'WebHook',
      properties: {
        // The key (k3y+with/slash==) percent-encoded: base64's + / = would break the query string.
        endpointUrl: 'https://func-abc-h2bqfzb4a8c0cxd5.eastus2-01.azurewebsites.net/runtime/webhooks/blobs?functionName=Host.Functions.inbox-edit&code=k3y%2Bwith%2Fslash%3D%3D',
        maxEventsPerBatch: 1,
        preferredBatchSizeInKilobytes: 64,
      },
    },
    filter: {
      includedEventTypes: ['Microsoft.Storage.BlobCreated'],
      // The trailing /blobs/ keeps a container named e.g. "inbox-old" out.
      subjectBeginsWith: '/blobServices/default/containers/inbox/blobs/',
      isSubjectCaseSensitive: false,
    },
    eventDeliverySchema: 'EventGridSchema',
    retryPolicy: { maxDeliveryAttempts: 30, eventTimeToLiveInMinutes: 1440 },
    deadLetterWithResourceIdentity: {
      identity: { type: 'SystemAssigned' },
      deadLetterDestination: {
        endpointType: 'StorageBlob',
        properties: { resourceId: DEPLOYED.AZURE_STORAGE_ACCOUNT_ID, blobContainerName: 'eventgrid-deadletters' },
      },
    },
  },
};

interface HookRun extends FakeAzRun {
  readonly body: unknown;
}

describe.each(hookTwins('postdeploy'))('$title (Event Grid subscription for the inbox blob trigger)', (twin) => {
  describeWithTool(twin.shell, `${twin.title} against a fake az`, (tool) => {
    const fakeAz = withFakeAz(twin, tool, FAKE_AZ);

    function runHook(env: Record<string, string | undefined>): HookRun {
      const bodyFile = join(fakeAz.dir(), 'body.json');
      const run = fakeAz.run({
        FAKE_AZ_BODY: bodyFile,
        FAKE_AZ_KEY: 'k3y+with/slash==',
        POSTDEPLOY_ATTEMPTS: '2',
        POSTDEPLOY_RETRY_SECONDS: '0',
        ...DEPLOYED,
        ...env,
      });
      let body: unknown;
      try {
        body = JSON.parse(readFileSync(bodyFile, 'utf8'));
      } catch {
        body = undefined;
      }
      return { ...run, body };
    }

    it('subscribes BlobCreated under the inbox container to the blob webhook on the real default hostname', () => {
      const run = runHook({});

      expect(run.stderr).toBe('');
      expect(run.status).toBe(0);
      expect(run.body).toEqual(EXPECTED_SUBSCRIPTION);
      expect(run.calls).toEqual([
        `account show --subscription ${DEPLOYED.AZURE_SUBSCRIPTION_ID} --output none`,
        FUNCTION_SHOW,
        `functionapp keys list --subscription ${DEPLOYED.AZURE_SUBSCRIPTION_ID} --resource-group rg-dev --name func-abc --query systemKeys.blobs_extension --output tsv`,
        expect.stringMatching(new RegExp(`^rest --method put --url ${escape(SUBSCRIPTION_URL)} --body @\\S+ --output none$`)),
        `rest --method get --url ${SUBSCRIPTION_URL} --query properties.provisioningState --output tsv`,
      ]);
    });

    it('syncs the host triggers while only WarmUp is listed, then subscribes', () => {
      const run = runHook({ FAKE_AZ_FUNCTION_FAILURES: '2', POSTDEPLOY_ATTEMPTS: '3' });

      expect(run.status).toBe(0);
      expect(run.calls.filter((call) => call.startsWith('functionapp function show') || call.startsWith('rest --method post'))).toEqual([
        FUNCTION_SHOW,
        SYNC_CALL,
        FUNCTION_SHOW,
        SYNC_CALL,
        FUNCTION_SHOW,
      ]);
      expect(run.body).toEqual(EXPECTED_SUBSCRIPTION);
    });

    it('keeps waiting when a trigger sync fails, and syncs before every retry until it gives up', () => {
      const recovered = runHook({ FAKE_AZ_FUNCTION_FAILURES: '1', FAKE_AZ_SYNC_RC: '1' });
      expect(recovered.status).toBe(0);
      expect(recovered.stdout).toContain('trigger sync failed');

      const missing = runHook({ FAKE_AZ_FUNCTION_RC: '3', POSTDEPLOY_ATTEMPTS: '3' });
      expect(missing.status).not.toBe(0);
      expect(missing.calls.filter((call) => call === SYNC_CALL)).toHaveLength(2);
    });

    it('fails, naming the function, when the inbox function is never listed', () => {
      const run = runHook({ FAKE_AZ_FUNCTION_RC: '3' });
      expect(run.status).not.toBe(0);
      expect(run.stderr).toContain('function inbox-edit is not deployed to func-abc');
      expect(run.calls.some((call) => call.startsWith('rest --method put'))).toBe(false);
    });

    it('fails when the blobs_extension key never appears', () => {
      const run = runHook({ FAKE_AZ_KEY: '' });
      expect(run.status).not.toBe(0);
      expect(run.stderr).toContain('no blobs_extension system key');
      expect(run.calls.filter((call) => call.startsWith('functionapp keys list'))).toHaveLength(2);
    });

    it('fails when Event Grid refuses the subscription, after retrying', () => {
      const run = runHook({ FAKE_AZ_PUT_RC: '1' });
      expect(run.status).not.toBe(0);
      expect(run.stderr).toContain('could not create event subscription inboxblobcreated after 2 attempts');
      expect(run.calls.filter((call) => call.startsWith('rest --method put'))).toHaveLength(2);
    });

    it('fails when the subscription ends Failed (e.g. the webhook validation handshake failed)', () => {
      const run = runHook({ FAKE_AZ_STATE: 'Failed' });
      expect(run.status).not.toBe(0);
      expect(run.stderr).toContain('could not create event subscription');
    });

    itChecksItsInputsFirst(runHook, { azdValue: 'AZURE_FUNCTION_APP_HOSTNAME', retrySetting: 'POSTDEPLOY_RETRY_SECONDS' });
  });
});

describeHookSource('postdeploy');

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
