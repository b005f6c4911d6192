import { existsSync, readFileSync, rmSync } from 'node:fs';

import { describeWithTool } from '../helpers/system-tools';
import type { FakeAzRun } from './hook-scripts';
import { describeHookSource, hookTwins, itChecksItsInputsFirst, withFakeAz } from './hook-scripts';

/**
 * A stand-in for the Azure CLI: logs each call and answers from FAKE_AZ_* variables, so the hooks
 * run for real (under dash and pwsh) with nothing reaching Azure.
 * - `keyvault secret list` fails its first FAKE_AZ_LIST_FAILURES calls (a role still propagating),
 *   then prints the ids in FAKE_AZ_SECRET_IDS, one a line, as `--query [].id --output tsv` does;
 * - `keyvault secret set` keeps what Key Vault would store, and the permissions of the file it was
 *   read from, beside the log;
 * - the reference status reads AccessToKeyVaultDenied for the first FAKE_AZ_UNRESOLVED_POLLS
 *   calls, then FAKE_AZ_STATUS (default Resolved).
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
    file=$(printf '%s\\n' "$*" | sed -n 's/.*--file \\([^ ]*\\).*/\\1/p')
    cp "$file" "$FAKE_AZ_LOG.stored"
    ls -l "$file" | cut -c1-10 >"$FAKE_AZ_LOG.mode"
    printf '%s\\n' "$file" >"$FAKE_AZ_LOG.file"
    exit "\${FAKE_AZ_SET_RC:-0}" ;;
  "rest --method post"*) exit "\${FAKE_AZ_REFRESH_RC:-0}" ;;
  "rest --method get"*)
    if [ "$(count polled)" -lt "\${FAKE_AZ_UNRESOLVED_POLLS:-0}" ]; then echo AccessToKeyVaultDenied; else echo "\${FAKE_AZ_STATUS:-Resolved}"; fi
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
};

const VAULT = 'https://kv-abc.vault.azure.net/secrets';
const API_KEY_ONLY = `${VAULT}/azure-openai-api-key`;
const WITH_SECRET = `${VAULT}/azure-openai-api-key ${VAULT}/job-token-secret`;

const REFERENCES = `/subscriptions/${SUBSCRIPTION}/resourceGroups/rg-dev/providers/Microsoft.Web/sites/func-abc/config/configreferences/appsettings`;
const CALLS = {
  account: `account show --subscription ${SUBSCRIPTION} --output none`,
  list: `keyvault secret list --subscription ${SUBSCRIPTION} --vault-name kv-abc --query [].id --output tsv`,
  set: new RegExp(`^keyvault secret set --subscription ${SUBSCRIPTION} --vault-name kv-abc --name job-token-secret --file \\S+ --output none$`),
  refresh: `rest --method post --url ${REFERENCES}/refresh?api-version=2022-03-01 --output none`,
  status: `rest --method get --url ${REFERENCES}/JOB_TOKEN_SECRET?api-version=2022-03-01 --query properties.status --output tsv`,
  restart: `functionapp restart --subscription ${SUBSCRIPTION} --resource-group rg-dev --name func-abc --output none`,
};

interface HookRun extends FakeAzRun {
  /** What `az keyvault secret set` would have stored, if it was called. */
  readonly stored: string | undefined;
  /** `ls -l` permissions of the file az read the value from. */
  readonly mode: string | undefined;
  /** Whether that file is still there after the hook. */
  readonly leftBehind: boolean;
}

describe.each(hookTwins('ensure-job-token-secret'))('$title (the job-token secret, made once)', (twin) => {
  describeWithTool(twin.shell, `${twin.title} against a fake az`, (tool) => {
    const fakeAz = withFakeAz(twin, tool, FAKE_AZ);

    function runHook(env: Record<string, string | undefined>): HookRun {
      const log = fakeAz.log();
      // The fake's counters and captures, from an earlier run in the same test.
      for (const suffix of ['.listed', '.polled', '.stored', '.mode', '.file']) rmSync(`${log}${suffix}`, { force: true });
      const run = fakeAz.run({
        // The hook's temporary file goes here, where the test can see whether it is left behind.
        TMPDIR: fakeAz.dir(),
        FAKE_AZ_SECRET_IDS: API_KEY_ONLY,
        POSTPROVISION_ATTEMPTS: '2',
        POSTPROVISION_RETRY_SECONDS: '0',
        ...PROVISIONED,
        ...env,
      });
      const read = (suffix: string) => (existsSync(`${log}${suffix}`) ? readFileSync(`${log}${suffix}`, 'utf8') : undefined);
      const valueFile = read('.file')?.trim();
      return {
        ...run,
        stored: read('.stored'),
        mode: read('.mode')?.trim(),
        leftBehind: valueFile !== undefined && existsSync(valueFile),
      };
    }

    it('creates the secret when the vault has none: 64 random hex characters, from a private file it then deletes, then restarts the app once the reference resolves', () => {
      const run = runHook({});

      expect(run.stderr).toBe('');
      expect(run.status).toBe(0);
      expect(run.stored).toMatch(/^[0-9a-f]{64}$/);
      expect(run.mode).toBe('-rw-------');
      expect(run.leftBehind).toBe(false);
      expect(run.calls).toEqual([CALLS.account, CALLS.list, expect.stringMatching(CALLS.set), CALLS.refresh, CALLS.status, CALLS.restart]);
      expect(run.stdout).toContain('created secret job-token-secret in Key Vault kv-abc');
    });

    it('never shows the secret: not on a command line, not in its output', () => {
      const run = runHook({});
      const secret = run.stored ?? '';

      expect(secret).toHaveLength(64);
      expect(run.calls.filter((call) => call.includes(secret))).toEqual([]);
      expect(run.stdout + run.stderr).not.toContain(secret);
    });

    it('makes a different secret each time it has to make one', () => {
      const first = runHook({}).stored;
      const second = runHook({}).stored;
      expect(first).toMatch(/^[0-9a-f]{64}$/);
      expect(second).toMatch(/^[0-9a-f]{64}$/);
      expect(first).not.toBe(second);
    });

    it('keeps an existing secret: no new version, and no restart when the reference already resolves', () => {
      const run = runHook({ FAKE_AZ_SECRET_IDS: WITH_SECRET });

      expect(run.status).toBe(0);
      expect(run.calls).toEqual([CALLS.account, CALLS.list, CALLS.refresh, CALLS.status]);
      expect(run.stored).toBeUndefined();
      expect(run.stdout).toContain('secret job-token-secret exists in Key Vault kv-abc; kept as it is');
    });

    it('matches the secret by its whole name', () => {
      const run = runHook({ FAKE_AZ_SECRET_IDS: `${VAULT}/job-token-secret-old ${VAULT}/old-job-token-secret` });
      expect(run.status).toBe(0);
      expect(run.calls.some((call) => CALLS.set.test(call))).toBe(true);
    });

    it('retries the look-up while its role to list secrets propagates, and does not take a failed look-up for a missing secret', () => {
      const recovered = runHook({ FAKE_AZ_SECRET_IDS: WITH_SECRET, FAKE_AZ_LIST_FAILURES: '1' });
      expect(recovered.status).toBe(0);
      expect(recovered.calls.filter((call) => call === CALLS.list)).toHaveLength(2);
      expect(recovered.stored).toBeUndefined();

      const refused = runHook({ FAKE_AZ_SECRET_IDS: WITH_SECRET, FAKE_AZ_LIST_FAILURES: '5' });
      expect(refused.status).not.toBe(0);
      expect(refused.stderr).toContain('could not list the secrets of Key Vault kv-abc after 2 attempts');
      expect(refused.calls).toEqual([CALLS.account, CALLS.list, CALLS.list]);
    });

    it('asks the platform to resolve the reference again until it does, then restarts the app', () => {
      const run = runHook({ FAKE_AZ_SECRET_IDS: WITH_SECRET, FAKE_AZ_UNRESOLVED_POLLS: '2', POSTPROVISION_ATTEMPTS: '3' });

      expect(run.status).toBe(0);
      expect(run.calls).toEqual([CALLS.account, CALLS.list, CALLS.refresh, CALLS.status, CALLS.refresh, CALLS.status, CALLS.refresh, CALLS.status, CALLS.restart]);
      expect(run.stdout).toContain('status AccessToKeyVaultDenied');
    });

    it('keeps checking when a refresh request fails', () => {
      const run = runHook({ FAKE_AZ_SECRET_IDS: WITH_SECRET, FAKE_AZ_REFRESH_RC: '1' });
      expect(run.status).toBe(0);
      expect(run.stdout).toContain('failed; checking anyway');
    });

    it('fails, naming the status, when the reference never resolves, and does not restart', () => {
      const run = runHook({ FAKE_AZ_STATUS: 'SecretNotFound' });

      expect(run.status).not.toBe(0);
      expect(run.stderr).toContain('JOB_TOKEN_SECRET of func-abc does not resolve (status SecretNotFound) after 2 attempts');
      expect(run.calls.filter((call) => call === CALLS.status)).toHaveLength(2);
      expect(run.calls).not.toContain(CALLS.restart);
    });

    it('fails when Key Vault refuses the secret (e.g. a deleted one of that name), saying how to recover it', () => {
      const run = runHook({ FAKE_AZ_SET_RC: '1' });

      expect(run.status).not.toBe(0);
      expect(run.stderr).toContain('could not create secret job-token-secret in Key Vault kv-abc');
      expect(run.stderr).toContain('az keyvault secret recover --vault-name kv-abc --name job-token-secret');
      expect(run.leftBehind).toBe(false);
      expect(run.calls).not.toContain(CALLS.refresh);
    });

    it('reports a failed restart without failing: the secret is in place, and deploy starts the app', () => {
      const run = runHook({ FAKE_AZ_RESTART_RC: '1' });
      expect(run.status).toBe(0);
      expect(run.stdout).toContain('could not restart func-abc');
    });

    itChecksItsInputsFirst(runHook, { azdValue: 'AZURE_KEY_VAULT_NAME', retrySetting: 'POSTPROVISION_ATTEMPTS' });
  });
});

describeHookSource('ensure-job-token-secret');
