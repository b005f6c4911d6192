import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { basename, join } from 'node:path';

import { loadConfig } from '../../src/config';

import { describeWithTool } from '../helpers/system-tools';
import type { FakeAzRun } from './hook-scripts';
import { describeHookSource, hookTwins, itChecksItsInputsFirst, withFakeAz } from './hook-scripts';

/**
 * A stand-in for the Azure CLI: logs each call and answers from FAKE_AZ_* variables, so the hooks
 * run for real (under dash and pwsh) with nothing reaching Azure.
 * - `keyvault secret list` fails its first FAKE_AZ_LIST_FAILURES calls (a role still propagating),
 *   then prints the ids in FAKE_AZ_SECRET_IDS, one a line, as `--query [].id --output tsv` does;
 * - `keyvault secret set` keeps what Key Vault would store under the secret's name, and the
 *   permissions and path of the file it was read from, beside the log; FAKE_AZ_SET_RC fails it;
 * - the reference status of a setting reads AccessToKeyVaultDenied for its first
 *   FAKE_AZ_UNRESOLVED_POLLS calls, then FAKE_AZ_STATUS_<setting> (or FAKE_AZ_STATUS, default Resolved).
 */
const FAKE_AZ = `#!/bin/sh
printf '%s\\n' "$*" >>"$FAKE_AZ_LOG"
count() {
  n=$(cat "$FAKE_AZ_LOG.$1" 2>/dev/null || echo 0)
  echo $((n + 1)) >"$FAKE_AZ_LOG.$1"
  echo "$n"
}
case "$*" in
  "account show"*) exit "\${FAKE_AZ_ACCOUNT_RC:-0}" ;;
  "keyvault secret list"*)
    if [ "$(count listed)" -lt "\${FAKE_AZ_LIST_FAILURES:-0}" ]; then
      echo "ERROR: (Forbidden) Caller is not authorized to perform action on resource." >&2
      exit 1
    fi
    for id in \${FAKE_AZ_SECRET_IDS:-}; do printf '%s\\n' "$id"; done
    exit 0 ;;
  "keyvault secret set"*)
    name=$(printf '%s\\n' "$*" | sed -n 's/.*--name \\([^ ]*\\).*/\\1/p')
    file=$(printf '%s\\n' "$*" | sed -n 's/.*--file \\([^ ]*\\).*/\\1/p')
    cp "$file" "$FAKE_AZ_LOG.stored.$name"
    ls -l "$file" | cut -c1-10 >"$FAKE_AZ_LOG.mode.$name"
    printf '%s\\n' "$file" >>"$FAKE_AZ_LOG.files"
    exit "\${FAKE_AZ_SET_RC:-0}" ;;
  "rest --method post"*) exit "\${FAKE_AZ_REFRESH_RC:-0}" ;;
  "rest --method get"*)
    setting=$(printf '%s\\n' "$*" | sed -n 's/.*appsettings\\/\\([A-Z_]*\\)?.*/\\1/p')
    if [ "$(count "polled.$setting")" -lt "\${FAKE_AZ_UNRESOLVED_POLLS:-0}" ]; then
      echo AccessToKeyVaultDenied
    else
      eval "status=\\\${FAKE_AZ_STATUS_$setting:-\\\${FAKE_AZ_STATUS:-Resolved}}"
      echo "$status"
    fi
    exit 0 ;;
  "functionapp restart"*) exit "\${FAKE_AZ_RESTART_RC:-0}" ;;
esac
echo "fake az: unexpected call: $*" >&2
exit 99
`;

const SUBSCRIPTION = '11111111-2222-3333-4444-555555555555';
const PROVISIONED = {
  AZURE_SUBSCRIPTION_ID: SUBSCRIPTION,
  AZURE_RESOURCE_GROUP: 'rg-dev',
  AZURE_FUNCTION_APP_NAME: 'func-abc',
  AZURE_KEY_VAULT_NAME: 'kv-abc',
  JOB_TOKEN_SECRET_NAME: 'job-token-secret',
  CALLBACK_SIGNING_SECRET_NAME: 'callback-signing-secret',
};

const VAULT = 'https://kv-abc.vault.azure.net/secrets';
const API_KEY_ONLY = `${VAULT}/azure-openai-api-key`;
const WITH_JOB_TOKEN = `${API_KEY_ONLY} ${VAULT}/job-token-secret`;
const WITH_BOTH = `${WITH_JOB_TOKEN} ${VAULT}/callback-signing-secret`;

const REFERENCES = `/subscriptions/${SUBSCRIPTION}/resourceGroups/rg-dev/providers/Microsoft.Web/sites/func-abc/config/configreferences/appsettings`;
const set = (name: string) => new RegExp(`^keyvault secret set --subscription ${SUBSCRIPTION} --vault-name kv-abc --name ${name} --file \\S+ --output none$`);
const status = (setting: string) => `rest --method get --url ${REFERENCES}/${setting}?api-version=2022-03-01 --query properties.status --output tsv`;
const CALLS = {
  account: `account show --subscription ${SUBSCRIPTION} --output none`,
  list: `keyvault secret list --subscription ${SUBSCRIPTION} --vault-name kv-abc --query [].id --output tsv`,
  setJobToken: set('job-token-secret'),
  setCallbackSigning: set('callback-signing-secret'),
  refresh: `rest --method post --url ${REFERENCES}/refresh?api-version=2022-03-01 --output none`,
  jobTokenStatus: status('JOB_TOKEN_SECRET'),
  callbackSigningStatus: status('CALLBACK_SIGNING_SECRET'),
  restart: `functionapp restart --subscription ${SUBSCRIPTION} --resource-group rg-dev --name func-abc --output none`,
};
const isSet = (call: string) => CALLS.setJobToken.test(call) || CALLS.setCallbackSigning.test(call);

/** Formats src/config.ts accepts for each secret, as the app checks them at start-up. */
const JOB_TOKEN_FORMAT = /^[0-9a-f]{64}$/;
const WEBHOOK_SECRET_FORMAT = /^whsec_[A-Za-z0-9+/]{43}=$/;

interface HookRun extends FakeAzRun {
  /** What `az keyvault secret set` would have stored, by secret name. */
  readonly stored: Record<string, string>;
  /** `ls -l` permissions of the file az read each value from, by secret name. */
  readonly modes: Record<string, string>;
  /** The files az read values from that are still there after the hook. */
  readonly leftBehind: string[];
}

describe.each(hookTwins('ensure-secrets'))('$title (the job-token and callback signing secrets, each made once)', (twin) => {
  describeWithTool(twin.shell, `${twin.title} against a fake az`, (tool) => {
    const fakeAz = withFakeAz(twin, tool, FAKE_AZ);

    function runHook(env: Record<string, string | undefined>): HookRun {
      const log = fakeAz.log();
      // The fake's counters and captures, from an earlier run in the same test.
      for (const file of readdirSync(fakeAz.dir())) if (file.startsWith(`${basename(log)}.`)) rmSync(join(fakeAz.dir(), file), { force: true });
      const run = fakeAz.run({
        // The hook's temporary files go here, where the test can see whether they are left behind.
        TMPDIR: fakeAz.dir(),
        FAKE_AZ_SECRET_IDS: API_KEY_ONLY,
        POSTPROVISION_ATTEMPTS: '2',
        POSTPROVISION_RETRY_SECONDS: '0',
        ...PROVISIONED,
        ...env,
      });
      const captured = (prefix: string) =>
        Object.fromEntries(
          readdirSync(fakeAz.dir())
            .filter((file) => file.startsWith(`${basename(log)}.${prefix}.`))
            .map((file) => [file.slice(`${basename(log)}.${prefix}.`.length), readFileSync(join(fakeAz.dir(), file), 'utf8')]),
        );
      const files = existsSync(`${log}.files`) ? readFileSync(`${log}.files`, 'utf8').split('\n').filter(Boolean) : [];
      return {
        ...run,
        stored: captured('stored'),
        modes: Object.fromEntries(Object.entries(captured('mode')).map(([name, mode]) => [name, mode.trim()])),
        leftBehind: files.filter((file) => existsSync(file)),
      };
    }

    it('creates both secrets when the vault has neither, each in its format, from private files it then deletes, then restarts the app once the references resolve', () => {
      const run = runHook({});

      expect(run.stderr).toBe('');
      expect(run.status).toBe(0);
      expect(run.stored['job-token-secret']).toMatch(JOB_TOKEN_FORMAT);
      expect(run.stored['callback-signing-secret']).toMatch(WEBHOOK_SECRET_FORMAT);
      expect(Buffer.from((run.stored['callback-signing-secret'] ?? '').slice('whsec_'.length), 'base64')).toHaveLength(32);
      expect(run.modes).toEqual({ 'job-token-secret': '-rw-------', 'callback-signing-secret': '-rw-------' });
      expect(run.leftBehind).toEqual([]);
      expect(run.calls).toEqual([
        CALLS.account,
        CALLS.list,
        expect.stringMatching(CALLS.setJobToken),
        expect.stringMatching(CALLS.setCallbackSigning),
        CALLS.refresh,
        CALLS.jobTokenStatus,
        CALLS.callbackSigningStatus,
        CALLS.restart,
      ]);
      expect(run.stdout).toContain('created secret job-token-secret in Key Vault kv-abc');
      expect(run.stdout).toContain('created secret callback-signing-secret in Key Vault kv-abc');
    });

    it('makes a callback signing secret the app accepts', () => {
      const secret = runHook({ FAKE_AZ_SECRET_IDS: WITH_JOB_TOKEN }).stored['callback-signing-secret'] ?? '';
      const config = loadConfig({
        AZURE_OPENAI_ENDPOINT: 'https://x.openai.azure.com',
        AZURE_OPENAI_DEPLOYMENTS: 'gpt-image-2',
        ImagesStorage: 'UseDevelopmentStorage=true',
        CALLBACK_SIGNING_SECRET: secret,
      });
      expect(config.callbacks.signingSecret).toEqual({ kind: 'configured', secret });
    });

    it('never shows a secret: not on a command line, not in its output', () => {
      const run = runHook({});
      const secrets = Object.values(run.stored);

      expect(secrets).toHaveLength(2);
      for (const secret of secrets) {
        expect(secret.length).toBeGreaterThanOrEqual(50);
        expect(run.calls.filter((call) => call.includes(secret))).toEqual([]);
        expect(run.stdout + run.stderr).not.toContain(secret);
      }
    });

    it('makes different secrets each time it has to make them', () => {
      const first = runHook({}).stored;
      const second = runHook({}).stored;
      for (const name of ['job-token-secret', 'callback-signing-secret']) {
        expect([name, first[name]]).toEqual([name, expect.any(String)]);
        expect(first[name]).not.toBe(second[name]);
      }
    });

    it('keeps existing secrets: no new version, and no restart when the references already resolve', () => {
      const run = runHook({ FAKE_AZ_SECRET_IDS: WITH_BOTH });

      expect(run.status).toBe(0);
      expect(run.calls).toEqual([CALLS.account, CALLS.list, CALLS.refresh, CALLS.jobTokenStatus, CALLS.callbackSigningStatus]);
      expect(run.stored).toEqual({});
      expect(run.stdout).toContain('secret job-token-secret exists in Key Vault kv-abc; kept as it is');
      expect(run.stdout).toContain('secret callback-signing-secret exists in Key Vault kv-abc; kept as it is');
    });

    it('adds only the missing one to a vault an earlier version provisioned with the job-token secret alone, and restarts the app', () => {
      const run = runHook({ FAKE_AZ_SECRET_IDS: WITH_JOB_TOKEN });

      expect(run.status).toBe(0);
      expect(Object.keys(run.stored)).toEqual(['callback-signing-secret']);
      expect(run.calls.filter(isSet)).toEqual([expect.stringMatching(CALLS.setCallbackSigning)]);
      expect(run.calls).toContain(CALLS.restart);
    });

    it('matches a secret by its whole name', () => {
      const run = runHook({ FAKE_AZ_SECRET_IDS: `${VAULT}/job-token-secret-old ${VAULT}/old-job-token-secret ${VAULT}/callback-signing-secret2` });
      expect(run.status).toBe(0);
      expect(Object.keys(run.stored).sort()).toEqual(['callback-signing-secret', 'job-token-secret']);
    });

    it('retries the look-up while its role to list secrets propagates, and does not take a failed look-up for missing secrets', () => {
      const recovered = runHook({ FAKE_AZ_SECRET_IDS: WITH_BOTH, FAKE_AZ_LIST_FAILURES: '1' });
      expect(recovered.status).toBe(0);
      expect(recovered.calls.filter((call) => call === CALLS.list)).toHaveLength(2);
      expect(recovered.stored).toEqual({});

      const refused = runHook({ FAKE_AZ_SECRET_IDS: WITH_BOTH, FAKE_AZ_LIST_FAILURES: '5' });
      expect(refused.status).not.toBe(0);
      expect(refused.stderr).toContain('could not list the secrets of Key Vault kv-abc after 2 attempts');
      expect(refused.calls).toEqual([CALLS.account, CALLS.list, CALLS.list]);
    });

    it('asks the platform to resolve the references again until they do, checking only those still unresolved, then restarts the app', () => {
      const run = runHook({ FAKE_AZ_SECRET_IDS: WITH_BOTH, FAKE_AZ_UNRESOLVED_POLLS: '2', POSTPROVISION_ATTEMPTS: '3' });

      expect(run.status).toBe(0);
      expect(run.calls).toEqual([
        CALLS.account,
        CALLS.list,
        ...[1, 2, 3].flatMap(() => [CALLS.refresh, CALLS.jobTokenStatus, CALLS.callbackSigningStatus]),
        CALLS.restart,
      ]);
      expect(run.stdout).toContain('status AccessToKeyVaultDenied');

      const one = runHook({ FAKE_AZ_SECRET_IDS: WITH_BOTH, FAKE_AZ_STATUS_JOB_TOKEN_SECRET: 'AccessToKeyVaultDenied', POSTPROVISION_ATTEMPTS: '3' });
      expect(one.status).not.toBe(0);
      expect(one.calls.filter((call) => call === CALLS.callbackSigningStatus)).toHaveLength(1);
      expect(one.calls.filter((call) => call === CALLS.jobTokenStatus)).toHaveLength(3);
    });

    it('keeps checking when a refresh request fails', () => {
      const run = runHook({ FAKE_AZ_SECRET_IDS: WITH_BOTH, FAKE_AZ_REFRESH_RC: '1' });
      expect(run.status).toBe(0);
      expect(run.stdout).toContain('failed; checking anyway');
    });

    it('fails, naming the setting and its status, when a reference never resolves, and does not restart', () => {
      const run = runHook({ FAKE_AZ_STATUS_CALLBACK_SIGNING_SECRET: 'SecretNotFound' });

      expect(run.status).not.toBe(0);
      expect(run.stderr).toContain('CALLBACK_SIGNING_SECRET of func-abc does not resolve (status SecretNotFound) after 2 attempts');
      expect(run.calls.filter((call) => call === CALLS.callbackSigningStatus)).toHaveLength(2);
      expect(run.calls).not.toContain(CALLS.restart);
    });

    it('fails when Key Vault refuses a secret (e.g. a deleted one of that name), saying how to recover it', () => {
      const run = runHook({ FAKE_AZ_SET_RC: '1' });

      expect(run.status).not.toBe(0);
      expect(run.stderr).toContain('could not create secret job-token-secret in Key Vault kv-abc');
      expect(run.stderr).toContain('az keyvault secret recover --vault-name kv-abc --name job-token-secret');
      expect(run.leftBehind).toEqual([]);
      expect(run.calls).not.toContain(CALLS.refresh);
    });

    it('reports a failed restart without failing: the secrets are in place, and deploy starts the app', () => {
      const run = runHook({ FAKE_AZ_RESTART_RC: '1' });
      expect(run.status).toBe(0);
      expect(run.stdout).toContain('could not restart func-abc');
    });

    itChecksItsInputsFirst(runHook, { azdValue: 'CALLBACK_SIGNING_SECRET_NAME', retrySetting: 'POSTPROVISION_ATTEMPTS' });
  });
});

describeHookSource('ensure-secrets');
