import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import type { SystemTool } from '../helpers/system-tools';
import { describeWithTool } from '../helpers/system-tools';
import type { ArmTemplate } from './bicep-cli';
import { compileMain, INFRA_DIR } from './bicep-cli';

const HOOK_SH = join(INFRA_DIR, 'hooks', 'postdeploy.sh');
const HOOK_PS1 = join(INFRA_DIR, 'hooks', 'postdeploy.ps1');

/** azd sets these in every hook's environment besides the Bicep outputs. */
const AZD_BUILT_INS = ['AZURE_SUBSCRIPTION_ID'];

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

interface HookRun {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly calls: string[];
  readonly body: unknown;
}

/** The two twins azure.yaml runs: posix under /bin/sh (dash on Debian), windows under pwsh. */
interface Twin {
  readonly title: string;
  readonly shell: 'dash' | 'pwsh';
  readonly args: (tool: SystemTool) => [string, string[]];
}

const TWINS: Twin[] = [
  { title: 'postdeploy.sh under dash', shell: 'dash', args: (tool) => [tool.path, [HOOK_SH]] },
  { title: 'postdeploy.ps1 under pwsh', shell: 'pwsh', args: (tool) => [tool.path, ['-NoLogo', '-NoProfile', '-NonInteractive', '-File', HOOK_PS1]] },
];

describe.each(TWINS)('$title (Event Grid subscription for the inbox blob trigger)', (twin) => {
  describeWithTool(twin.shell, `${twin.title} against a fake az`, (tool) => {
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
        HOME: dir,
        POWERSHELL_TELEMETRY_OPTOUT: '1',
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
      const [command, args] = twin.args(tool);
      const result = spawnSync(command, args, { env: merged, encoding: 'utf8', timeout: 60_000 });
      if (result.error) throw result.error;
      let body: unknown;
      try {
        body = JSON.parse(readFileSync(bodyFile, 'utf8'));
      } catch {
        body = undefined;
      }
      return { status: result.status, stdout: result.stdout, stderr: result.stderr, calls: readFileSync(log, 'utf8').split('\n').filter(Boolean), body };
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

    it('fails before calling Azure when an azd output is missing, a retry setting is not a number, or az is not logged in', () => {
      const missing = runHook({ AZURE_FUNCTION_APP_HOSTNAME: undefined });
      expect(missing.status).not.toBe(0);
      expect(missing.stderr).toContain('AZURE_FUNCTION_APP_HOSTNAME is not set');
      expect(missing.calls).toEqual([]);

      const badRetry = runHook({ POSTDEPLOY_RETRY_SECONDS: 'soon' });
      expect(badRetry.status).not.toBe(0);
      expect(badRetry.stderr).toContain('must be whole numbers');
      expect(badRetry.calls).toEqual([]);

      const loggedOut = runHook({ FAKE_AZ_ACCOUNT_RC: '1' });
      expect(loggedOut.status).not.toBe(0);
      expect(loggedOut.stderr).toContain('az login');
    });
  });
});

describe('postdeploy.sh as source', () => {
  it('parses as POSIX sh', () => {
    expect(spawnSync('sh', ['-n', HOOK_SH], { encoding: 'utf8' }).status).toBe(0);
  });

  describeWithTool('shellcheck', 'postdeploy.sh through shellcheck', (shellcheck) => {
    it('has no finding at any severity', () => {
      const result = spawnSync(shellcheck.path, ['--shell=sh', '--severity=style', HOOK_SH], { encoding: 'utf8' });
      expect(result.stdout).toBe('');
      expect(result.status).toBe(0);
    });
  });

  it('reads the same azd values as its PowerShell twin', () => {
    expect(shellReads().length).toBeGreaterThan(5);
    expect(powershellReads()).toEqual(shellReads());
  });

  describeWithTool('bicep', 'postdeploy.sh and the Bicep outputs', (bicep) => {
    let template: ArmTemplate;
    beforeAll(async () => {
      ({ template } = await compileMain(bicep));
    }, 120_000);

    it('reads only Bicep outputs and azd built-ins', () => {
      expect(shellReads().filter((name) => !(name in template.outputs) && !AZD_BUILT_INS.includes(name))).toEqual([]);
    });
  });
});

/** The azd environment values postdeploy.sh requires. */
function shellReads(): string[] {
  return /for name in ([\s\S]*?); do/.exec(readFileSync(HOOK_SH, 'utf8'))?.[1]?.split(/[\s\\]+/).filter(Boolean) ?? [];
}

function powershellReads(): string[] {
  return [...(/\$names = @\(([\s\S]*?)\)/.exec(readFileSync(HOOK_PS1, 'utf8'))?.[1] ?? '').matchAll(/'([A-Z_]+)'/g)].map((match) => match[1] ?? '');
}

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
