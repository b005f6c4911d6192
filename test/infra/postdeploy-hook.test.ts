import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { INFRA_DIR, readInfra, statementsOf } from './bicep';

const HOOK = join(INFRA_DIR, 'hooks', 'postdeploy.sh');
const HOOK_PS1 = join(INFRA_DIR, 'hooks', 'postdeploy.ps1');
const outputs = statementsOf(readInfra('main.bicep'), 'output').map((output) => output.name);

/** azd sets these in every hook's environment besides the Bicep outputs. */
const AZD_BUILT_INS = ['AZURE_SUBSCRIPTION_ID'];

/**
 * A stand-in for the Azure CLI: logs each call and answers from FAKE_AZ_* variables, so the hook
 * runs for real under dash with nothing reaching Azure.
 */
const FAKE_AZ = `#!/bin/sh
printf '%s\\n' "$*" >>"$FAKE_AZ_LOG"
case "$*" in
  "account show"*) exit "\${FAKE_AZ_ACCOUNT_RC:-0}" ;;
  "functionapp function show"*) exit "\${FAKE_AZ_FUNCTION_RC:-0}" ;;
  "functionapp keys list"*) printf '%s\\n' "$FAKE_AZ_KEY"; exit 0 ;;
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

interface HookRun {
  readonly status: number | null;
  readonly stderr: string;
  readonly calls: string[];
  readonly body: unknown;
}

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'postdeploy-'));
  writeFileSync(join(dir, 'az'), FAKE_AZ);
  chmodSync(join(dir, 'az'), 0o755);
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function runHook(env: Record<string, string | undefined>): HookRun {
  const log = join(dir, 'calls.log');
  const bodyFile = join(dir, 'body.json');
  writeFileSync(log, '');
  const merged: Record<string, string> = {
    PATH: `${dir}:/usr/bin:/bin`,
    FAKE_AZ_LOG: log,
    FAKE_AZ_BODY: bodyFile,
    FAKE_AZ_KEY: 'k3y+with/slash==',
    POSTDEPLOY_ATTEMPTS: '2',
    POSTDEPLOY_RETRY_SECONDS: '0',
  };
  for (const [name, value] of Object.entries({ ...DEPLOYED, ...env })) {
    if (value === undefined) delete merged[name];
    else merged[name] = value;
  }
  // Exactly as azd runs a posix hook: /bin/sh (dash here) with the azd environment.
  const result = spawnSync('dash', [HOOK], { env: merged, encoding: 'utf8', timeout: 20_000 });
  let body: unknown;
  try {
    body = JSON.parse(readFileSync(bodyFile, 'utf8'));
  } catch {
    body = undefined;
  }
  return { status: result.status, stderr: result.stderr, calls: readFileSync(log, 'utf8').split('\n').filter(Boolean), body };
}

describe('postdeploy.sh (Event Grid subscription for the inbox blob trigger)', () => {
  it('parses under dash and passes shellcheck', () => {
    expect(spawnSync('dash', ['-n', HOOK], { encoding: 'utf8' }).status).toBe(0);
    const shellcheck = spawnSync('shellcheck', ['--shell=sh', '--severity=style', HOOK], { encoding: 'utf8' });
    if (shellcheck.error) {
      throw new Error(`shellcheck is not installed (${shellcheck.error.message}); install it (apt-get install -y shellcheck) — .ci/run does.`);
    }
    expect(shellcheck.stdout).toBe('');
    expect(shellcheck.status).toBe(0);
  });

  it('subscribes BlobCreated under the inbox container to the blob webhook on the real default hostname', () => {
    const run = runHook({});

    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    expect(run.body).toEqual({
      properties: {
        destination: {
          endpointType: 'WebHook',
          properties: {
            endpointUrl:
              'https://func-abc-h2bqfzb4a8c0cxd5.eastus2-01.azurewebsites.net/runtime/webhooks/blobs?functionName=Host.Functions.inbox-edit&code=k3y%2Bwith%2Fslash%3D%3D',
            maxEventsPerBatch: 1,
            preferredBatchSizeInKilobytes: 64,
          },
        },
        filter: {
          includedEventTypes: ['Microsoft.Storage.BlobCreated'],
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
    });
    const subscriptionUrl = `${DEPLOYED.EVENTGRID_SYSTEM_TOPIC_ID}/eventSubscriptions/inboxblobcreated?api-version=2025-02-15`;
    expect(run.calls).toEqual([
      `account show --subscription ${DEPLOYED.AZURE_SUBSCRIPTION_ID} --output none`,
      `functionapp function show --subscription ${DEPLOYED.AZURE_SUBSCRIPTION_ID} --resource-group rg-dev --name func-abc --function-name inbox-edit --output none`,
      `functionapp keys list --subscription ${DEPLOYED.AZURE_SUBSCRIPTION_ID} --resource-group rg-dev --name func-abc --query systemKeys.blobs_extension --output tsv`,
      expect.stringMatching(new RegExp(`^rest --method put --url ${escape(subscriptionUrl)} --body @\\S+ --output none$`)),
      `rest --method get --url ${subscriptionUrl} --query properties.provisioningState --output tsv`,
    ]);
  });

  it('fails, naming the function, when the inbox function is not deployed', () => {
    const run = runHook({ FAKE_AZ_FUNCTION_RC: '3' });
    expect(run.status).not.toBe(0);
    expect(run.stderr).toContain('function inbox-edit is not deployed to func-abc');
    expect(run.calls.some((call) => call.startsWith('rest'))).toBe(false);
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

  it('fails before calling Azure when an azd output is missing, or az is not logged in', () => {
    const missing = runHook({ AZURE_FUNCTION_APP_HOSTNAME: undefined });
    expect(missing.status).not.toBe(0);
    expect(missing.stderr).toContain('AZURE_FUNCTION_APP_HOSTNAME is not set');
    expect(missing.calls).toEqual([]);

    const loggedOut = runHook({ FAKE_AZ_ACCOUNT_RC: '1' });
    expect(loggedOut.status).not.toBe(0);
    expect(loggedOut.stderr).toContain('az login');
  });

  it('reads only Bicep outputs (and azd built-ins), the same list as its PowerShell twin', () => {
    const shList = /for name in ([\s\S]*?); do/.exec(readFileSync(HOOK, 'utf8'))?.[1]?.split(/[\s\\]+/).filter(Boolean) ?? [];
    const ps1List = [...(/\$names = @\(([\s\S]*?)\)/.exec(readFileSync(HOOK_PS1, 'utf8'))?.[1] ?? '').matchAll(/'([A-Z_]+)'/g)].map((match) => match[1]);
    expect(shList.length).toBeGreaterThan(5);
    expect(ps1List).toEqual(shList);
    expect(shList.filter((name) => !outputs.includes(name) && !AZD_BUILT_INS.includes(name))).toEqual([]);
  });

  it('keeps the PowerShell twin on the same webhook, filter, API version and failure handling', () => {
    const ps1 = readFileSync(HOOK_PS1, 'utf8');
    expect(ps1).toContain("$ErrorActionPreference = 'Stop'");
    expect(ps1).toContain('/runtime/webhooks/blobs?functionName=Host.Functions.$fn&code=$([uri]::EscapeDataString($key))');
    expect(ps1).toContain('"/blobServices/default/containers/$($envValues[\'INBOX_CONTAINER\'])/blobs/"');
    expect(ps1).toContain("includedEventTypes = @('Microsoft.Storage.BlobCreated')");
    expect(ps1).toContain('api-version=2025-02-15');
    expect(ps1).toContain("identity = @{ type = 'SystemAssigned' }");
    // Every az call is followed by an exit-code check.
    const azCommands = (script: string) => [...script.matchAll(/\baz (account \w+|functionapp \w+ \w+|rest --method \w+)/g)].map((match) => match[1]);
    const azCalls = azCommands(ps1).length;
    expect(azCommands(ps1)).toEqual(azCommands(readFileSync(HOOK, 'utf8')));
    expect((ps1.match(/\$LASTEXITCODE/g) ?? []).length).toBeGreaterThanOrEqual(azCalls);
  });
});

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
